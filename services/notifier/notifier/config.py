"""The notifier's configuration: one TOML file holding SMTP profiles, templates and, per
company, the template assigned to the `EmailCustomerForBackOrder` scenario.

Loaded and checked completely at start: every problem is reported at once, one readable
line each, and templates are parsed then (an unknown placeholder names the template and the
line). A template whose profile is missing or undefined is not an error here: it is the
seed's documented failure, recorded per notification at delivery (`warnings()` lists it).

Passwords never sit in the file: a profile names an environment variable or a file, read
only when a connection is opened, and never printed.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .domain.intake import Policy
from .domain.message import MessageError, MessageTemplate, checked_address
from .domain.rules import SCENARIO, SCENARIOS, SLIP_SCENARIO, CoolDown
from .domain.templates import TemplateError, TemplateText, parse

CONFIG_ENV = "BACKORDERS_NOTIFIER_CONFIG"
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
ANY_COMPANY = "*"
# No second email for an order within a day of its last one, unless configured otherwise.
DEFAULT_COOLDOWN_MINUTES = 24 * 60


class ConfigError(ValueError):
    """The configuration cannot be used; `problems` holds one readable line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"notifier configuration {source}:\n" + "\n".join(f"  - {p}" for p in problems))


class ProfileError(RuntimeError):
    """A profile that cannot be used as it stands (its password cannot be read)."""


def _no_line_breaks(value: Any) -> Any:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, str) and ("\r" in item or "\n" in item):
            raise ValueError("must not contain CR or LF (it goes into a mail header)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Strict):
    max_attempts: int = Field(default=5, ge=1)
    backoff_seconds: float = Field(default=30.0, ge=0)
    max_backoff_seconds: float = Field(default=3600.0, ge=0)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (doubling)."""
        return min(self.backoff_seconds * 2 ** max(attempts - 1, 0), self.max_backoff_seconds)


class SmtpProfile(RetryPolicy):
    type: Literal["smtp"]
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    verify_certificate: bool = True
    ca_file: Path | None = None  # extra CA bundle to verify the server against
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    local_hostname: str | None = None

    @model_validator(mode="after")
    def _credentials(self) -> SmtpProfile:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        has_password = bool(self.password_env or self.password_file)
        if self.username and not has_password:
            raise ValueError("username needs password_env or password_file")
        if has_password and not self.username:
            raise ValueError("password_env / password_file need a username")
        if self.security == "none" and self.username:
            raise ValueError("AUTH over an unencrypted connection would expose the password: "
                             "use security = \"starttls\" or \"tls\"")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.security]

    def password(self) -> str | None:
        """The password, read now from the environment variable or file; raises
        ProfileError naming where it looked (never the value)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise ProfileError(f"password environment variable {self.password_env} is not set")
            return value
        if self.password_file:
            try:
                value = self.password_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise ProfileError(
                    f"cannot read password file {self.password_file}: {error.strerror}"
                ) from None
            except UnicodeDecodeError:  # its message would quote bytes of the file
                raise ProfileError(f"password file {self.password_file} is not UTF-8 text") from None
            if not value:
                raise ProfileError(f"password file {self.password_file} is empty")
            return value
        return None


class FileProfile(RetryPolicy):
    """Writes each message as an `.eml` file instead of sending it (the embedded default)."""

    type: Literal["file"]
    directory: Path
    max_attempts: int = Field(default=3, ge=1)
    backoff_seconds: float = Field(default=0.5, ge=0)


Profile = Annotated[SmtpProfile | FileProfile, Field(discriminator="type")]


class TemplateConfig(_Strict):
    subject: str
    sender_email: str
    sender_name: str | None = None
    reply_to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    profile: str | None = None
    html: str | None = None
    html_file: Path | None = None
    text: str | None = None
    text_file: Path | None = None

    @field_validator("reply_to", "cc", "bcc", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("sender_email", "sender_name", "reply_to", "cc", "bcc", "subject")
    @classmethod
    def _header(cls, value: Any) -> Any:
        return _no_line_breaks(value)

    @model_validator(mode="after")
    def _bodies(self) -> TemplateConfig:
        if self.html is not None and self.html_file is not None:
            raise ValueError("give html or html_file, not both")
        if self.text is not None and self.text_file is not None:
            raise ValueError("give text or text_file, not both")
        if not any(v is not None for v in (self.html, self.html_file, self.text, self.text_file)):
            raise ValueError("a template needs an HTML body, a plain-text body, or both")
        return self


class CompanyConfig(_Strict):
    name: str | None = None
    footer: str = ""
    # The seed's Email Template Assignment: scenario -> template name.
    assignments: dict[str, str] = Field(default_factory=dict)
    cooldown_minutes: float | None = Field(default=None, ge=0)
    slip_emails: bool | None = None  # None: [notifier] slip_emails

    @field_validator("name")
    @classmethod
    def _header(cls, value: Any) -> Any:
        return _no_line_breaks(value)  # #?CompanyName?# may go into the subject

    @field_validator("assignments")
    @classmethod
    def _known_scenarios(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"unknown scenario {unknown[0]!r} (known: {', '.join(SCENARIOS)})")
        return value


class NotifierSettings(_Strict):
    # Right-hand side of every Message-ID; by default the sender address's domain.
    message_id_domain: str | None = None
    # Every company's cool-down unless it sets its own (0: off).
    cooldown_minutes: float = Field(default=DEFAULT_COOLDOWN_MINUTES, ge=0)
    # Email a customer when a backorder's expected date slips later than the one last
    # emailed for the order (the template assigned to EmailCustomerForExpectedDateSlip).
    slip_emails: bool = False
    # A notification claimed for sending by a process that then died is sent again after this.
    sending_lease_seconds: float = Field(default=600.0, gt=0)
    # Sent and suppressed notifications, and closed orders, are pruned once their change is
    # older than this, in business time (at least the longest cool-down is kept).
    retention_days: float = Field(default=30.0, gt=0)
    # Dead letters are pruned this long after they were recorded (wall clock).
    dead_letter_retention_days: float = Field(default=30.0, gt=0)

    @field_validator("message_id_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not _DOMAIN.match(value):
            raise ValueError(f"{value!r} is not a domain name")
        return value


class ConfigFile(_Strict):
    notifier: NotifierSettings = Field(default_factory=NotifierSettings)
    profiles: dict[str, Profile] = Field(default_factory=dict)
    templates: dict[str, TemplateConfig] = Field(default_factory=dict)
    companies: dict[str, CompanyConfig] = Field(default_factory=dict)


@dataclass(slots=True)
class NotifierConfig:
    """The checked configuration, templates parsed."""

    source: str
    settings: NotifierSettings
    profiles: dict[str, SmtpProfile | FileProfile]
    templates: dict[str, MessageTemplate]
    companies: dict[str, CompanyConfig]
    template_settings: dict[str, TemplateConfig] = field(default_factory=dict)

    def company(self, company_id: str) -> CompanyConfig | None:
        return self.companies.get(company_id) or self.companies.get(ANY_COMPANY)

    def assignment(self, company_id: str) -> Policy | None:
        """The template to send when the company's order is marked as a backorder."""
        company = self.company(company_id)
        if company is None or SCENARIO not in company.assignments:
            return None
        minutes = company.cooldown_minutes
        if minutes is None:
            minutes = self.settings.cooldown_minutes
        slip_template = company.assignments.get(SLIP_SCENARIO) if self.sends_slips(company) else None
        return Policy(company.assignments[SCENARIO], CoolDown(minutes), slip_template)

    def sends_slips(self, company: CompanyConfig) -> bool:
        return self.settings.slip_emails if company.slip_emails is None else company.slip_emails

    def company_name(self, company_id: str) -> str:
        company = self.companies.get(company_id)
        if company is not None and company.name:
            return company.name
        fallback = self.companies.get(ANY_COMPANY)
        if company is None and fallback is not None and fallback.name:
            return fallback.name
        return company_id

    def footer(self, company_id: str) -> str:
        company = self.company(company_id)
        return company.footer if company is not None else ""

    def message_id_domain(self, template: MessageTemplate) -> str:
        if self.settings.message_id_domain:
            return self.settings.message_id_domain
        return template.sender_email.rpartition("@")[2] or "localhost"

    def longest_cooldown_minutes(self) -> float:
        """The longest cool-down any company has: the emails within it must be kept."""
        minutes = [self.settings.cooldown_minutes]
        minutes += [c.cooldown_minutes for c in self.companies.values() if c.cooldown_minutes is not None]
        return max(minutes)

    def warnings(self) -> list[str]:
        """What loads but will make notifications fail (the seed's documented failure)."""
        found = []
        for name, template in self.templates.items():
            if template.profile is None:
                found.append(f"template {name!r} has no SMTP profile: its emails will be recorded as failed")
            elif template.profile not in self.profiles:
                found.append(f"template {name!r} names profile {template.profile!r}, which is not "
                             "defined: its emails will be recorded as failed")
        for name, profile in self.profiles.items():
            if isinstance(profile, SmtpProfile) and profile.password_env and not os.environ.get(profile.password_env):
                found.append(f"profile {name!r}: password environment variable {profile.password_env} is not set")
        return found


def load(path: str | Path) -> NotifierConfig:
    """Read and check a configuration file; raises ConfigError."""
    file = Path(path)
    source = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(source, [f"cannot read the file: {error.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, [f"not valid TOML: {error}"]) from None
    return from_mapping(data, source, base=file.resolve().parent)


def from_mapping(data: dict[str, Any], source: str, base: Path) -> NotifierConfig:
    """Check a decoded configuration; relative paths are taken from `base`."""
    try:
        raw = ConfigFile.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, [_problem(e) for e in error.errors(include_url=False)]) from None

    problems: list[str] = []
    profiles = {name: _with_paths(profile, base) for name, profile in raw.profiles.items()}
    templates: dict[str, MessageTemplate] = {}
    for name, spec in raw.templates.items():
        try:
            templates[name] = _template(name, spec, base)
        except (TemplateError, OSError) as error:
            problems.append(str(error) if isinstance(error, TemplateError) else
                            f"template {name!r}: cannot read {error.filename}: {error.strerror}")
        for header, addresses in (("sender_email", [spec.sender_email]), ("reply_to", spec.reply_to),
                                  ("cc", spec.cc), ("bcc", spec.bcc)):
            for address in addresses:
                try:
                    checked_address(header, address)
                except MessageError:
                    problems.append(f"templates.{name}.{header}: {address!r} is not a valid email address")
    for company_id, company in raw.companies.items():
        for scenario, template in company.assignments.items():
            if template not in raw.templates:
                problems.append(f"companies.{company_id}.assignments.{scenario}: "
                                f"template {template!r} is not defined")
    config = NotifierConfig(source, raw.notifier, profiles, templates, dict(raw.companies), dict(raw.templates))
    for company_id, company in raw.companies.items():
        if config.sends_slips(company) and SCENARIO in company.assignments \
                and SLIP_SCENARIO not in company.assignments:
            problems.append(f"companies.{company_id}: slip_emails is on but no template is assigned to "
                            f"{SLIP_SCENARIO}")
    if problems:
        raise ConfigError(source, problems)
    return config


def _with_paths(profile: SmtpProfile | FileProfile, base: Path) -> SmtpProfile | FileProfile:
    updates = {}
    for attr in ("directory", "ca_file", "password_file"):
        value = getattr(profile, attr, None)
        if value is not None and not value.is_absolute():
            updates[attr] = Path(os.path.normpath(base / value))
    return profile.model_copy(update=updates) if updates else profile


def _template(name: str, spec: TemplateConfig, base: Path) -> MessageTemplate:
    def body(part, inline: str | None, path: Path | None) -> TemplateText | None:
        if path is not None:
            file = path if path.is_absolute() else base / path
            return parse(name, part, file.read_text(encoding="utf-8"), origin=str(path))
        if inline is not None:
            return parse(name, part, inline)
        return None

    return MessageTemplate(
        name=name,
        subject=parse(name, "subject", spec.subject),
        sender_email=spec.sender_email,
        sender_name=spec.sender_name,
        reply_to=tuple(spec.reply_to),
        cc=tuple(spec.cc),
        bcc=tuple(spec.bcc),
        html=body("html", spec.html, spec.html_file),
        text=body("text", spec.text, spec.text_file),
        profile=spec.profile,
    )


def _problem(error: dict) -> str:
    loc = [str(part) for part in error["loc"]]
    # A profile's type tag shows up in the location: profiles.main.smtp.host -> profiles.main.host
    if len(loc) >= 3 and loc[0] == "profiles" and loc[2] in ("smtp", "file"):
        del loc[2]
    where = ".".join(loc) or "(file)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{where}: unknown setting"
    if kind == "union_tag_not_found":
        return f"{where}: missing type (\"smtp\" or \"file\")"
    if kind == "union_tag_invalid":
        return f"{where}: type must be \"smtp\" or \"file\""
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"
