"""iCalendar ⇄ neutral values, shared by CalDAV and the ``.ics`` import: ``parse`` (icalendar,
any object), ``fast`` (a line reader for the common single event), ``fields`` (the rules both
readers share), ``write`` (neutral values → VCALENDAR text)."""
