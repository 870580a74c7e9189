"""One module per admin page (each an ``APIRouter``), included by :mod:`calbridge.web`."""
