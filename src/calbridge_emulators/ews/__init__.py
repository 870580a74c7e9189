"""A faithful Exchange Web Services (EWS) emulator for Exchange Server 2016/2019."""
