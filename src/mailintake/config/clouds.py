"""Microsoft's clouds: the global service and the national clouds, each with its own sign-in
host, Microsoft Graph host, Exchange Online host and resource.

A national cloud is a separate instance: an app registered in one cannot sign in to another,
and "access tokens acquired for a national cloud deployment are not interchangeable with those
acquired for the global service or any other national cloud" [N2]. So every endpoint, host
and scope follows the cloud the administrator picks: each cloud has a built-in authorization
server (``config.servers``) whose endpoints and scopes are built from the values below.

Sources (stored copies of Microsoft's pages):

* [N1] MicrosoftDocs/entra-docs docs/identity-platform/authentication-national-cloud.md
  @07d3251d2333cc81922723433f8496eb3b760b5d (ms.date 01/15/2025): sign-in hosts
  ``login.microsoftonline.us`` (US Government) and ``login.partner.microsoftonline.cn``
  (China operated by 21Vianet); the authorize and token paths are the global ones.
* [N2] microsoftgraph/microsoft-graph-docs-contrib concepts/deployments.md
  @032e3efe8cdb8bc6811e883e3ec10124ea51a1f9: Graph roots ``graph.microsoft.us`` (US
  Government L4: "If you're working in a Microsoft 365 GCC High environment, use
  https://graph.microsoft.us"), ``dod-graph.microsoft.us`` (L5, DoD) and
  ``microsoftgraph.chinacloudapi.cn``; it gives ``login.chinacloudapi.cn`` as China's sign-in
  host (older name; [N1] is the identity platform's own page and is followed).
* [N3] microsoftgraph/microsoft-graph-docs-contrib concepts/sdks/national-clouds.md
  @0273c463ba400fd1c477eb6800edb2eee57b1773: a scope that names the Graph domain "MUST use
  the domain of the Microsoft Graph service root endpoint for the national cloud";
  ``https://graph.microsoft.us/.default`` for client credentials.
* [N4] MicrosoftDocs/microsoft-365-docs microsoft-365/includes/
  office-365-u.s.-government-gcc-high-endpoints.md @00fff532a1b0d08b49839d923081ccdd4ba49f88:
  Exchange Online ``outlook.office365.us`` on TCP 143, 993, 995 (IMAP, POP3).
* [N5] same folder, office-365-u.s.-government-dod-endpoints.md
  @00e08aa4c550b148c6eb74c7b4a3c94ac5018e94: ``outlook-dod.office365.us`` (and
  ``webmail.apps.mil``) on TCP 143, 993, 995.
* [N6] same folder, office-365-operated-by-21vianet-endpoints.md
  @1037ac6bda9dc6d5e8edfcab5b2b4abc4bf19ca9: Exchange Online ``*.partner.outlook.cn`` on
  TCP 443, 80 only; no IMAP or POP3 port is listed, so no mail host is filled in for China.
* [N7] https://learn.microsoft.com/previous-versions/office/office-365-api/api/o365-china-endpoints:
  in 21Vianet's cloud the Outlook resource is ``https://partner.outlook.cn`` in place of
  ``https://outlook.office.com``.

Microsoft documents the IMAP and POP3 scopes only for the global service (oauth-facts §2.2):
in the national clouds the Exchange resource of the scopes is the cloud's Exchange Online
host ([N4], [N5], [N7]); docs/providers/microsoft-national-clouds.md says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cloud:
    key: str  # global | us_gov_gcc_high | us_gov_dod | china
    server: str  # the name of its built-in authorization server
    label: str
    short: str  # how messages name it: "Microsoft (<short>) said …"
    login_host: str
    graph_host: str
    # The Exchange Online resource of delegated (user) and application (.default) scopes.
    exchange_user_resource: str
    exchange_app_resource: str
    # The IMAP and POP3 host, where Microsoft documents one.
    mail_host: str | None

    @property
    def graph_resource(self) -> str:
        return f"https://{self.graph_host}"

    @property
    def graph_url(self) -> str:
        return f"https://{self.graph_host}/v1.0"

    @property
    def exchange_resources(self) -> frozenset[str]:
        return frozenset({self.exchange_user_resource, self.exchange_app_resource})

    def endpoint(self, path: str) -> str:
        return f"https://{self.login_host}/{{tenant}}/{path}"


# oauth-facts §1.1, §2.1, §2.2: both outlook hosts name the one Exchange Online resource.
GLOBAL = Cloud(
    key="global",
    server="MICROSOFT",
    label="Microsoft global service",
    short="global",
    login_host="login.microsoftonline.com",
    graph_host="graph.microsoft.com",
    exchange_user_resource="https://outlook.office.com",
    exchange_app_resource="https://outlook.office365.com",
    mail_host="outlook.office365.com",
)
# [N1] [N2] [N3] [N4]
US_GOV_GCC_HIGH = Cloud(
    key="us_gov_gcc_high",
    server="MICROSOFT_US_GCC_HIGH",
    label="Microsoft 365 GCC High (US Government)",
    short="US Government GCC High",
    login_host="login.microsoftonline.us",
    graph_host="graph.microsoft.us",
    exchange_user_resource="https://outlook.office365.us",
    exchange_app_resource="https://outlook.office365.us",
    mail_host="outlook.office365.us",
)
# [N1] [N2] [N3] [N5]
US_GOV_DOD = Cloud(
    key="us_gov_dod",
    server="MICROSOFT_US_DOD",
    label="Microsoft 365 DoD (US Government)",
    short="US Government DoD",
    login_host="login.microsoftonline.us",
    graph_host="dod-graph.microsoft.us",
    exchange_user_resource="https://outlook-dod.office365.us",
    exchange_app_resource="https://outlook-dod.office365.us",
    mail_host="outlook-dod.office365.us",
)
# [N1] [N2] [N3] [N6] [N7]
CHINA = Cloud(
    key="china",
    server="MICROSOFT_CHINA",
    label="Microsoft 365 operated by 21Vianet (China)",
    short="China, operated by 21Vianet",
    login_host="login.partner.microsoftonline.cn",
    graph_host="microsoftgraph.chinacloudapi.cn",
    exchange_user_resource="https://partner.outlook.cn",
    exchange_app_resource="https://partner.outlook.cn",
    mail_host=None,
)

CLOUDS: tuple[Cloud, ...] = (GLOBAL, US_GOV_GCC_HIGH, US_GOV_DOD, CHINA)
BY_SERVER: dict[str, Cloud] = {c.server: c for c in CLOUDS}
BY_KEY: dict[str, Cloud] = {c.key: c for c in CLOUDS}

# Every Microsoft sign-in host, China's older name included ([N2]).
LOGIN_HOSTS = frozenset({c.login_host for c in CLOUDS} | {"login.chinacloudapi.cn"})
_BY_LOGIN_HOST = {
    "login.microsoftonline.com": GLOBAL,
    "login.partner.microsoftonline.cn": CHINA,
    "login.chinacloudapi.cn": CHINA,
}


def of_server(name: str | None) -> Cloud | None:
    """The cloud of a built-in Microsoft authorization server; None for any other."""
    return BY_SERVER.get(name or "")


def is_microsoft_server(name: str | None) -> bool:
    return of_server(name) is not None


def cloud_for(server: str | None, login_host: str | None) -> Cloud | None:
    """The cloud a server signs in to: by its name when built in, else by its sign-in host.
    US Government's one sign-in host serves GCC High and DoD alike: it reads as GCC High."""
    found = of_server(server)
    if found is not None:
        return found
    if login_host == US_GOV_GCC_HIGH.login_host:
        return US_GOV_GCC_HIGH
    return _BY_LOGIN_HOST.get(login_host or "")


def of_mail_host(host: str | None) -> Cloud | None:
    """The cloud whose IMAP/POP3 host this is."""
    lowered = (host or "").lower()
    return next((c for c in CLOUDS if c.mail_host and c.mail_host == lowered), None)
