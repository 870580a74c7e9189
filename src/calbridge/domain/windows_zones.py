"""Windows <-> IANA time-zone names (the CLDR ``windowsZones.xml`` mapping).

Microsoft Graph accepts and returns Windows time-zone names ("W. Europe Standard Time") in
``dateTimeTimeZone.timeZone``, ``originalStartTimeZone`` and the ``Prefer: outlook.timezone``
header, and also accepts IANA names.  This module holds the CLDR mapping so both the Graph
connector (``providers/graph/mapping.py``) and the Graph emulator translate the same way.  It is
pure data plus lookups (stdlib ``zoneinfo`` and the ``tzdata`` package), hence in ``domain``.

Data: CLDR ``common/supplemental/windowsZones.xml`` (2025 revision).  Each row is
``Windows name|default zone (territory 001) other zones...`` (indented lines continue a row).
Deprecated IANA aliases that CLDR still uses as canonical ids (``Asia/Calcutta``,
``Europe/Kiev`` ...) are kept as CLDR has them; :data:`IANA_ALIASES` maps the modern names.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_TABLE = """
Dateline Standard Time|Etc/GMT+12
UTC-11|Etc/GMT+11 Pacific/Pago_Pago Pacific/Niue Pacific/Midway
Aleutian Standard Time|America/Adak
Hawaiian Standard Time|Pacific/Honolulu Pacific/Rarotonga Pacific/Tahiti Etc/GMT+10
Marquesas Standard Time|Pacific/Marquesas
Alaskan Standard Time|America/Anchorage America/Juneau America/Metlakatla America/Nome
    America/Sitka America/Yakutat
UTC-09|Etc/GMT+9 Pacific/Gambier
Pacific Standard Time (Mexico)|America/Tijuana America/Santa_Isabel
UTC-08|Etc/GMT+8 Pacific/Pitcairn
Pacific Standard Time|America/Los_Angeles America/Vancouver PST8PDT
US Mountain Standard Time|America/Phoenix America/Creston America/Dawson_Creek America/Fort_Nelson
    America/Hermosillo Etc/GMT+7
Mountain Standard Time (Mexico)|America/Mazatlan
Mountain Standard Time|America/Denver America/Edmonton America/Cambridge_Bay America/Inuvik
    America/Ciudad_Juarez America/Boise MST7MDT
Yukon Standard Time|America/Whitehorse America/Dawson
Central America Standard Time|America/Guatemala America/Belize America/Costa_Rica Pacific/Galapagos
    America/Tegucigalpa America/Managua America/El_Salvador Etc/GMT+6
Central Standard Time|America/Chicago America/Winnipeg America/Rankin_Inlet America/Resolute
    America/Matamoros America/Ojinaga America/Indiana/Knox America/Indiana/Tell_City
    America/Menominee America/North_Dakota/Beulah America/North_Dakota/Center
    America/North_Dakota/New_Salem CST6CDT
Easter Island Standard Time|Pacific/Easter
Central Standard Time (Mexico)|America/Mexico_City America/Bahia_Banderas America/Merida
    America/Monterrey America/Chihuahua
Canada Central Standard Time|America/Regina America/Swift_Current
SA Pacific Standard Time|America/Bogota America/Rio_Branco America/Eirunepe America/Coral_Harbour
    America/Guayaquil America/Jamaica America/Cayman America/Panama America/Lima Etc/GMT+5
Eastern Standard Time (Mexico)|America/Cancun
Eastern Standard Time|America/New_York America/Nassau America/Toronto America/Iqaluit
    America/Detroit America/Indiana/Petersburg America/Indiana/Vincennes America/Indiana/Winamac
    America/Kentucky/Monticello America/Louisville EST5EDT
Haiti Standard Time|America/Port-au-Prince
Cuba Standard Time|America/Havana
US Eastern Standard Time|America/Indianapolis America/Indiana/Marengo America/Indiana/Vevay
Turks And Caicos Standard Time|America/Grand_Turk
Paraguay Standard Time|America/Asuncion
Atlantic Standard Time|America/Halifax Atlantic/Bermuda America/Glace_Bay America/Goose_Bay
    America/Moncton America/Thule
Venezuela Standard Time|America/Caracas
Central Brazilian Standard Time|America/Cuiaba America/Campo_Grande
SA Western Standard Time|America/La_Paz America/Antigua America/Anguilla America/Aruba
    America/Barbados America/St_Barthelemy America/Kralendijk America/Manaus America/Boa_Vista
    America/Porto_Velho America/Blanc-Sablon America/Curacao America/Dominica America/Santo_Domingo
    America/Grenada America/Guadeloupe America/Guyana America/St_Kitts America/St_Lucia
    America/Marigot America/Martinique America/Montserrat America/Puerto_Rico America/Lower_Princes
    America/Port_of_Spain America/St_Vincent America/Tortola America/St_Thomas Etc/GMT+4
Pacific SA Standard Time|America/Santiago
Newfoundland Standard Time|America/St_Johns
Tocantins Standard Time|America/Araguaina
E. South America Standard Time|America/Sao_Paulo
SA Eastern Standard Time|America/Cayenne Antarctica/Rothera Antarctica/Palmer America/Fortaleza
    America/Belem America/Maceio America/Recife America/Santarem Atlantic/Stanley
    America/Paramaribo Etc/GMT+3
Argentina Standard Time|America/Buenos_Aires America/Argentina/La_Rioja
    America/Argentina/Rio_Gallegos America/Argentina/Salta America/Argentina/San_Juan
    America/Argentina/San_Luis America/Argentina/Tucuman America/Argentina/Ushuaia
    America/Catamarca America/Cordoba America/Jujuy America/Mendoza
Greenland Standard Time|America/Godthab America/Scoresbysund
Montevideo Standard Time|America/Montevideo
Magallanes Standard Time|America/Punta_Arenas
Saint Pierre Standard Time|America/Miquelon
Bahia Standard Time|America/Bahia
UTC-02|Etc/GMT+2 America/Noronha Atlantic/South_Georgia
Azores Standard Time|Atlantic/Azores
Cape Verde Standard Time|Atlantic/Cape_Verde Etc/GMT+1
UTC|Etc/UTC Etc/GMT
GMT Standard Time|Europe/London Atlantic/Canary Atlantic/Faeroe Europe/Guernsey Europe/Dublin
    Europe/Isle_of_Man Europe/Jersey Europe/Lisbon Atlantic/Madeira
Greenwich Standard Time|Atlantic/Reykjavik Africa/Ouagadougou Africa/Abidjan Africa/Accra
    America/Danmarkshavn Africa/Banjul Africa/Conakry Africa/Bissau Africa/Monrovia Africa/Bamako
    Africa/Nouakchott Atlantic/St_Helena Africa/Freetown Africa/Dakar Africa/Lome
Sao Tome Standard Time|Africa/Sao_Tome
Morocco Standard Time|Africa/Casablanca Africa/El_Aaiun
W. Europe Standard Time|Europe/Berlin Europe/Andorra Europe/Vienna Europe/Zurich Europe/Busingen
    Europe/Gibraltar Europe/Rome Europe/Vaduz Europe/Luxembourg Europe/Monaco Europe/Malta
    Europe/Amsterdam Europe/Oslo Europe/Stockholm Arctic/Longyearbyen Europe/San_Marino
    Europe/Vatican
Central Europe Standard Time|Europe/Budapest Europe/Tirane Europe/Prague Europe/Podgorica
    Europe/Belgrade Europe/Ljubljana Europe/Bratislava
Romance Standard Time|Europe/Paris Europe/Brussels Europe/Copenhagen Europe/Madrid Africa/Ceuta
Central European Standard Time|Europe/Warsaw Europe/Sarajevo Europe/Zagreb Europe/Skopje
W. Central Africa Standard Time|Africa/Lagos Africa/Luanda Africa/Porto-Novo Africa/Kinshasa
    Africa/Bangui Africa/Brazzaville Africa/Douala Africa/Algiers Africa/Libreville Africa/Malabo
    Africa/Niamey Africa/Ndjamena Africa/Tunis Etc/GMT-1
Jordan Standard Time|Asia/Amman
GTB Standard Time|Europe/Bucharest Asia/Famagusta Asia/Nicosia Europe/Athens
Middle East Standard Time|Asia/Beirut
Egypt Standard Time|Africa/Cairo
E. Europe Standard Time|Europe/Chisinau
Syria Standard Time|Asia/Damascus
West Bank Standard Time|Asia/Hebron Asia/Gaza
South Africa Standard Time|Africa/Johannesburg Africa/Bujumbura Africa/Gaborone Africa/Lubumbashi
    Africa/Maseru Africa/Blantyre Africa/Maputo Africa/Kigali Africa/Mbabane Africa/Lusaka
    Africa/Harare Etc/GMT-2
FLE Standard Time|Europe/Kiev Europe/Mariehamn Europe/Sofia Europe/Tallinn Europe/Helsinki
    Europe/Vilnius Europe/Riga
Israel Standard Time|Asia/Jerusalem
South Sudan Standard Time|Africa/Juba
Kaliningrad Standard Time|Europe/Kaliningrad
Sudan Standard Time|Africa/Khartoum
Libya Standard Time|Africa/Tripoli
Namibia Standard Time|Africa/Windhoek
Arabic Standard Time|Asia/Baghdad
Turkey Standard Time|Europe/Istanbul
Arab Standard Time|Asia/Riyadh Asia/Bahrain Asia/Kuwait Asia/Qatar Asia/Aden
Belarus Standard Time|Europe/Minsk
Russian Standard Time|Europe/Moscow Europe/Kirov Europe/Simferopol
E. Africa Standard Time|Africa/Nairobi Antarctica/Syowa Africa/Djibouti Africa/Asmera
    Africa/Addis_Ababa Indian/Comoro Indian/Antananarivo Africa/Mogadishu Africa/Dar_es_Salaam
    Africa/Kampala Indian/Mayotte Etc/GMT-3
Volgograd Standard Time|Europe/Volgograd
Iran Standard Time|Asia/Tehran
Arabian Standard Time|Asia/Dubai Asia/Muscat Etc/GMT-4
Astrakhan Standard Time|Europe/Astrakhan Europe/Ulyanovsk
Azerbaijan Standard Time|Asia/Baku
Russia Time Zone 3|Europe/Samara
Mauritius Standard Time|Indian/Mauritius Indian/Reunion Indian/Mahe
Saratov Standard Time|Europe/Saratov
Georgian Standard Time|Asia/Tbilisi
Caucasus Standard Time|Asia/Yerevan
Afghanistan Standard Time|Asia/Kabul
West Asia Standard Time|Asia/Tashkent Antarctica/Mawson Antarctica/Vostok Asia/Oral Asia/Aqtau
    Asia/Aqtobe Asia/Atyrau Asia/Almaty Asia/Qostanay Indian/Maldives Indian/Kerguelen
    Asia/Dushanbe Asia/Ashgabat Asia/Samarkand Etc/GMT-5
Qyzylorda Standard Time|Asia/Qyzylorda
Ekaterinburg Standard Time|Asia/Yekaterinburg
Pakistan Standard Time|Asia/Karachi
India Standard Time|Asia/Calcutta
Sri Lanka Standard Time|Asia/Colombo
Nepal Standard Time|Asia/Katmandu
Central Asia Standard Time|Asia/Bishkek Asia/Urumqi Indian/Chagos Etc/GMT-6
Bangladesh Standard Time|Asia/Dhaka Asia/Thimphu
Omsk Standard Time|Asia/Omsk
Myanmar Standard Time|Asia/Rangoon Indian/Cocos
SE Asia Standard Time|Asia/Bangkok Antarctica/Davis Indian/Christmas Asia/Jakarta Asia/Pontianak
    Asia/Phnom_Penh Asia/Vientiane Asia/Saigon Etc/GMT-7
Altai Standard Time|Asia/Barnaul
W. Mongolia Standard Time|Asia/Hovd
North Asia Standard Time|Asia/Krasnoyarsk Asia/Novokuznetsk
N. Central Asia Standard Time|Asia/Novosibirsk
Tomsk Standard Time|Asia/Tomsk
China Standard Time|Asia/Shanghai Asia/Hong_Kong Asia/Macau
North Asia East Standard Time|Asia/Irkutsk
Singapore Standard Time|Asia/Singapore Asia/Brunei Antarctica/Casey Asia/Makassar Asia/Kuala_Lumpur
    Asia/Kuching Asia/Manila Etc/GMT-8
W. Australia Standard Time|Australia/Perth
Taipei Standard Time|Asia/Taipei
Ulaanbaatar Standard Time|Asia/Ulaanbaatar
Aus Central W. Standard Time|Australia/Eucla
Transbaikal Standard Time|Asia/Chita
Tokyo Standard Time|Asia/Tokyo Asia/Jayapura Pacific/Palau Asia/Dili Etc/GMT-9
North Korea Standard Time|Asia/Pyongyang
Korea Standard Time|Asia/Seoul
Yakutsk Standard Time|Asia/Yakutsk Asia/Khandyga
Cen. Australia Standard Time|Australia/Adelaide Australia/Broken_Hill
AUS Central Standard Time|Australia/Darwin
E. Australia Standard Time|Australia/Brisbane Australia/Lindeman
AUS Eastern Standard Time|Australia/Sydney Australia/Melbourne
West Pacific Standard Time|Pacific/Port_Moresby Antarctica/DumontDUrville Pacific/Truk Pacific/Guam
    Pacific/Saipan Etc/GMT-10
Tasmania Standard Time|Australia/Hobart Antarctica/Macquarie
Vladivostok Standard Time|Asia/Vladivostok Asia/Ust-Nera
Lord Howe Standard Time|Australia/Lord_Howe
Bougainville Standard Time|Pacific/Bougainville
Russia Time Zone 10|Asia/Srednekolymsk
Magadan Standard Time|Asia/Magadan
Norfolk Standard Time|Pacific/Norfolk
Sakhalin Standard Time|Asia/Sakhalin
Central Pacific Standard Time|Pacific/Guadalcanal Pacific/Ponape Pacific/Kosrae Pacific/Noumea
    Pacific/Efate Etc/GMT-11
Russia Time Zone 11|Asia/Kamchatka Asia/Anadyr
New Zealand Standard Time|Pacific/Auckland Antarctica/McMurdo
UTC+12|Etc/GMT-12 Pacific/Tarawa Pacific/Majuro Pacific/Kwajalein Pacific/Nauru Pacific/Funafuti
    Pacific/Wake Pacific/Wallis
Fiji Standard Time|Pacific/Fiji
Chatham Islands Standard Time|Pacific/Chatham
UTC+13|Etc/GMT-13 Pacific/Enderbury Pacific/Fakaofo
Tonga Standard Time|Pacific/Tongatapu
Samoa Standard Time|Pacific/Apia
Line Islands Standard Time|Pacific/Kiritimati Etc/GMT-14
"""

#: Windows name -> default IANA zone (CLDR territory "001").
WINDOWS_TO_IANA: dict[str, str] = {}
#: IANA zone -> Windows name (every territory row of CLDR).
IANA_TO_WINDOWS: dict[str, str] = {}

for _line in _TABLE.replace("\n    ", " ").strip().splitlines():
    _win, _zones = _line.split("|")
    _ids = _zones.split()
    WINDOWS_TO_IANA[_win] = _ids[0]
    for _zid in _ids:
        IANA_TO_WINDOWS.setdefault(_zid, _win)
del _line, _win, _zones, _ids, _zid

#: Modern IANA names whose CLDR canonical id is an older alias.
IANA_ALIASES: dict[str, str] = {
    "Asia/Kolkata": "Asia/Calcutta",
    "Asia/Kathmandu": "Asia/Katmandu",
    "Asia/Yangon": "Asia/Rangoon",
    "Asia/Ho_Chi_Minh": "Asia/Saigon",
    "Europe/Kyiv": "Europe/Kiev",
    "America/Nuuk": "America/Godthab",
    "Atlantic/Faroe": "Atlantic/Faeroe",
    "Pacific/Chuuk": "Pacific/Truk",
    "Pacific/Pohnpei": "Pacific/Ponape",
    "Pacific/Kanton": "Pacific/Enderbury",
    "Africa/Asmara": "Africa/Asmera",
    "America/Argentina/Buenos_Aires": "America/Buenos_Aires",
    "America/Argentina/Catamarca": "America/Catamarca",
    "America/Argentina/Cordoba": "America/Cordoba",
    "America/Argentina/Jujuy": "America/Jujuy",
    "America/Argentina/Mendoza": "America/Mendoza",
    "America/Indiana/Indianapolis": "America/Indianapolis",
    "America/Kentucky/Louisville": "America/Louisville",
    "America/Atikokan": "America/Coral_Harbour",
    "Etc/UCT": "Etc/UTC",
    "Etc/Universal": "Etc/UTC",
    "Etc/Zulu": "Etc/UTC",
    "Etc/GMT0": "Etc/GMT",
    "Etc/Greenwich": "Etc/GMT",
    "GMT": "Etc/GMT",
    "UCT": "Etc/UTC",
    "Zulu": "Etc/UTC",
}

_UTC_NAMES = frozenset({"utc", "etc/utc", "gmt", "etc/gmt", "z", "tzone://microsoft/utc"})
_WINDOWS_BY_LOWER = {name.lower(): name for name in WINDOWS_TO_IANA}


def windows_to_iana(name: str) -> str | None:
    """The default IANA zone for a Windows zone name (case-insensitive), or None."""
    canonical = _WINDOWS_BY_LOWER.get(name.strip().lower())
    return WINDOWS_TO_IANA[canonical] if canonical else None


def iana_to_windows(name: str) -> str | None:
    """The Windows zone name for an IANA zone (aliases such as Europe/Kyiv accepted)."""
    key = IANA_ALIASES.get(name, name)
    return IANA_TO_WINDOWS.get(key)


def canonical_windows_name(name: str) -> str | None:
    """Return the correctly-cased Windows name if ``name`` is one, else None."""
    return _WINDOWS_BY_LOWER.get(name.strip().lower())


@lru_cache(maxsize=512)
def resolve_zone(name: str) -> ZoneInfo:
    """Resolve a Graph ``timeZone`` value (Windows, IANA or UTC) to a :class:`ZoneInfo`.

    Raises :class:`KeyError` for names Graph would reject.
    """
    stripped = name.strip()
    if stripped.lower() in _UTC_NAMES:
        return ZoneInfo("UTC")
    iana = windows_to_iana(stripped)
    if iana is not None:
        return ZoneInfo(iana)
    if not stripped or stripped.startswith(("/", ".")) or ".." in stripped:
        raise KeyError(name)
    try:
        return ZoneInfo(stripped)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise KeyError(name) from exc


def is_known_zone(name: str) -> bool:
    """True when :func:`resolve_zone` accepts ``name``."""
    try:
        resolve_zone(name)
    except KeyError:
        return False
    return True
