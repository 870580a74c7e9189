"""The SOAP Autodiscover service (``POST /autodiscover/autodiscover.svc``): ``GetUserSettings``
as Exchange 2016/2019 answer it, so a client that only knows a mailbox's address finds the EWS
URL.

The request is the Autodiscover schema's ``a:GetUserSettingsRequestMessage`` (namespace
``http://schemas.microsoft.com/exchange/2010/Autodiscover``): ``Request`` → ``Users`` → ``User``
→ ``Mailbox`` (one or more) and ``RequestedSettings`` → ``Setting`` (names). The answer is a
``GetUserSettingsResponseMessage`` → ``Response`` (``ErrorCode``, ``ErrorMessage``,
``UserResponses``) with one ``UserResponse`` per user, in the request's order:

* a mailbox the organisation has → ``NoError`` and the requested settings it knows
  (``UserDisplayName``, ``AutoDiscoverSMTPAddress``, ``InternalEwsUrl``, ``ExternalEwsUrl``,
  ``CasVersion``, ``EwsSupportedSchemas``, ``UserDN``); a requested setting it does not serve is
  a ``UserSettingError`` ``SettingIsNotAvailable``, an unknown name ``InvalidSetting`` — as
  Exchange does;
* an address it does not have → ``InvalidUser``.

The EWS URL is this server's own ``/EWS/Exchange.asmx`` at the scheme and host the client
addressed. The SOAP header carries the
Autodiscover ``ServerVersionInfo`` (child elements, not attributes as in EWS) and the WS-Addressing
``Action``. Sign-in is the EWS endpoint's (Basic/NTLM; an unauthenticated request, as a client's
probe, is a 401 offering both). A request that is not ``GetUserSettings`` is a SOAP fault.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .schema import SOAP, WSA, XSI, A, build, el
from .store import Mailbox, Organisation

ACTION = "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/"

# The Exchange 2016/2019 EWS schema versions a CAS lists in EwsSupportedSchemas.
SUPPORTED_SCHEMAS = (
    "Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, "
    "Exchange2013, Exchange2013_SP1, Exchange2016"
)
# Every setting name the Autodiscover schema defines (a:Setting values); others: InvalidSetting.
KNOWN_SETTINGS = frozenset(
    """UserDisplayName UserDN UserDeploymentId InternalMailboxServer InternalRpcClientServer
    InternalMailboxServerDN InternalEcpUrl InternalEcpVoicemailUrl InternalEcpEmailSubscriptionsUrl
    InternalEcpTextMessagingUrl InternalEcpDeliveryReportUrl InternalEcpRetentionPolicyTagsUrl
    InternalEcpPublishingUrl InternalEwsUrl InternalOABUrl InternalUMUrl InternalWebClientUrls
    MailboxDN PublicFolderServer ActiveDirectoryServer ExternalMailboxServer
    ExternalMailboxServerRequiresSSL ExternalMailboxServerAuthenticationMethods
    EcpVoicemailUrlFragment EcpEmailSubscriptionsUrlFragment EcpTextMessagingUrlFragment
    EcpDeliveryReportUrlFragment EcpRetentionPolicyTagsUrlFragment EcpPublishingUrlFragment
    ExternalEcpUrl ExternalEcpVoicemailUrl ExternalEcpEmailSubscriptionsUrl
    ExternalEcpTextMessagingUrl ExternalEcpDeliveryReportUrl ExternalEcpRetentionPolicyTagsUrl
    ExternalEcpPublishingUrl ExternalEwsUrl ExternalOABUrl ExternalUMUrl ExternalWebClientUrls
    CrossOrganizationSharingEnabled AlternateMailboxes CasVersion EwsSupportedSchemas
    InternalPop3Connections ExternalPop3Connections InternalImap4Connections
    ExternalImap4Connections InternalSmtpConnections ExternalSmtpConnections
    InternalServerExclusiveConnect ExternalServerExclusiveConnect ExchangeRpcUrl
    ShowGalAsDefaultView AutoDiscoverSMTPAddress InteropExternalEwsUrl ExternalEwsVersion
    InteropExternalEwsVersion MobileMailboxPolicyInterop GroupingInformation UserMSOnline
    MapiHttpEnabled""".split()  # noqa: SIM905 (the schema's list, as it reads)
)


class NotGetUserSettings(Exception):
    """The request is not a GetUserSettings request message."""


def user_settings(
    org: Organisation, body: ET.Element, ews_url: str
) -> tuple[ET.Element, list[str]]:
    """The ``GetUserSettingsResponseMessage`` for a request body, and the users asked for."""
    message = body.find(f"{{{A}}}GetUserSettingsRequestMessage")
    request = message.find(f"{{{A}}}Request") if message is not None else None
    if request is None:
        raise NotGetUserSettings("The request is not a GetUserSettings request.")
    users = [
        (node.text or "").strip()
        for node in request.findall(f"{{{A}}}Users/{{{A}}}User/{{{A}}}Mailbox")
    ]
    wanted = [
        (node.text or "").strip()
        for node in request.findall(f"{{{A}}}RequestedSettings/{{{A}}}Setting")
    ]
    answers = [_user_response(org, org.mailbox(user), user, wanted, ews_url) for user in users]
    response = build(
        A,
        "Response",
        [
            el(A, "ErrorCode", "NoError"),
            el(A, "ErrorMessage", "No error."),
            build(A, "UserResponses", answers),
        ],
    )
    return build(A, "GetUserSettingsResponseMessage", [response]), users


def _user_response(
    org: Organisation, box: Mailbox | None, user: str, wanted: list[str], ews_url: str
) -> ET.Element:
    nil = {f"{{{XSI}}}nil": "true"}
    if box is None:
        return build(
            A,
            "UserResponse",
            [
                el(A, "ErrorCode", "InvalidUser"),
                el(A, "ErrorMessage", f"Invalid user: '{user}'"),
                el(A, "RedirectTarget", attrs=nil),
                build(A, "UserSettingErrors"),
                build(A, "UserSettings"),
            ],
        )
    major, minor, build_major, build_minor = org.version
    served = {
        "UserDisplayName": box.name,
        "UserDN": box.legacy_dn,
        "AutoDiscoverSMTPAddress": box.smtp,
        "InternalEwsUrl": ews_url,
        "ExternalEwsUrl": ews_url,
        "CasVersion": f"{major}.{minor:02d}.{build_major:04d}.{build_minor:03d}",
        "EwsSupportedSchemas": SUPPORTED_SCHEMAS,
    }
    settings: list[ET.Element] = []
    errors: list[ET.Element] = []
    for name in wanted:
        if name in served:
            settings.append(
                build(
                    A,
                    "UserSetting",
                    [el(A, "Name", name), el(A, "Value", served[name])],
                    attrs={f"{{{XSI}}}type": "StringSetting"},
                )
            )
        else:
            code, text = (
                ("SettingIsNotAvailable", f"User setting '{name}' is not available. ")
                if name in KNOWN_SETTINGS
                else ("InvalidSetting", f"The requested setting '{name}' is invalid. ")
            )
            errors.append(
                build(
                    A,
                    "UserSettingError",
                    [
                        el(A, "ErrorCode", code),
                        el(A, "ErrorMessage", text),
                        el(A, "SettingName", name),
                    ],
                )
            )
    return build(
        A,
        "UserResponse",
        [
            el(A, "ErrorCode", "NoError"),
            el(A, "ErrorMessage", "No error."),
            el(A, "RedirectTarget", attrs=nil),
            build(A, "UserSettingErrors", errors),
            build(A, "UserSettings", settings),
        ],
    )


def envelope(body: ET.Element, version: tuple[int, int, int, int], action: str) -> bytes:
    """A SOAP envelope as the Autodiscover service writes it: ``wsa:Action`` and the
    Autodiscover ``ServerVersionInfo`` (whose parts are child elements) in the header."""
    major, minor, build_major, build_minor = version
    root = ET.Element(f"{{{SOAP}}}Envelope")
    header = ET.SubElement(root, f"{{{SOAP}}}Header")
    header.append(el(WSA, "Action", ACTION + action, {f"{{{SOAP}}}mustUnderstand": "1"}))
    header.append(
        build(
            A,
            "ServerVersionInfo",
            [
                el(A, "MajorVersion", major),
                el(A, "MinorVersion", minor),
                el(A, "MajorBuildNumber", build_major),
                el(A, "MinorBuildNumber", build_minor),
                el(A, "Version", "Exchange2015"),
            ],
        )
    )
    ET.SubElement(root, f"{{{SOAP}}}Body").append(body)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>' + text
