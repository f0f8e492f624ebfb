"""The configuration file: checked at load with readable errors, templates parsed, secrets
read from the environment or a file only when needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from notifier.config import ConfigError, ProfileError, SmtpProfile, load

ROOT = Path(__file__).resolve().parents[3]

VALID = """
[profiles.main]
type = "smtp"
host = "127.0.0.1"
port = 2525
security = "starttls"
username = "mailer"
password_env = "NOTIFIER_TEST_PASSWORD"

[templates.notice]
subject = "Order #?OrderID?#"
sender_email = "orders@example.com"
profile = "main"
html_file = "bodies/notice.html"
text = "Dear #?FirstName?#"

[companies.c1]
name = "Thirsty Tea"
[companies.c1.assignments]
EmailCustomerForBackOrder = "notice"
"""


def write(tmp_path: Path, text: str, html: str = "<p>#?FirstName?#</p>\n") -> Path:
    (tmp_path / "bodies").mkdir(exist_ok=True)
    (tmp_path / "bodies" / "notice.html").write_text(html)
    path = tmp_path / "notifier.toml"
    path.write_text(text)
    return path


def test_the_example_configuration_of_deploy_is_valid():
    config = load(ROOT / "deploy" / "notifier.example.toml")
    assert config.assignment("default").template == "backorder-notice"
    assert config.assignment("default").cool_down.minutes == 1440
    assert config.assignment("any-other").template == "backorder-notice"  # the "*" company
    assert config.company_name("default") == "Thirsty Tea"
    assert config.company_name("any-other") == "any-other"


def test_a_valid_file_loads_with_bodies_from_files_relative_to_it(tmp_path):
    config = load(write(tmp_path, VALID))
    assert config.templates["notice"].html.names == {"FirstName"}
    assert config.assignment("c1").template == "notice"
    assert config.assignment("c2") is None


def test_an_unknown_placeholder_in_a_body_file_names_template_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, VALID, html="<p>\n\n#?FristName?#</p>"))
    assert error.value.problems == [
        ("template 'notice', HTML body (bodies/notice.html line 3): unknown placeholder #?FristName?# "
         "(did you mean #?FirstName?#)")]


def test_every_problem_is_reported_at_once_in_readable_lines(tmp_path):
    text = VALID.replace('security = "starttls"', 'security = "ssl"').replace("port = 2525", "prot = 2525")
    text = text.replace('EmailCustomerForBackOrder = "notice"', 'EmailCustomerForBackOrder = "missing"')
    text += '\n[profiles.other]\nhost = "x"\n'
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text))
    problems = "\n".join(error.value.problems)
    assert "profiles.main.security: Input should be 'none', 'starttls' or 'tls'" in problems
    assert "profiles.main.prot: unknown setting" in problems
    assert 'profiles.other: missing type ("smtp" or "file")' in problems
    # The assignment is checked once the file's shape is right.
    with pytest.raises(ConfigError, match="assignments.EmailCustomerForBackOrder: template 'missing' is not defined"):
        load(write(tmp_path, VALID.replace('EmailCustomerForBackOrder = "notice"', 'EmailCustomerForBackOrder = "missing"')))


def test_header_values_with_line_breaks_and_unsafe_credentials_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="must not contain CR or LF"):
        load(write(tmp_path, VALID.replace('subject = "Order #?OrderID?#"', 'subject = "Order\\nBcc: x@y.z"')))
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, VALID.replace('name = "Thirsty Tea"', 'name = "Thirsty Tea\\r\\nBcc: x@y.z"')))
    assert error.value.problems == ["companies.c1.name: must not contain CR or LF (it goes into a mail header)"]
    with pytest.raises(ConfigError, match="would expose the password"):
        load(write(tmp_path, VALID.replace('security = "starttls"', 'security = "none"')))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(write(tmp_path, "[profiles\n"))


def test_addresses_and_the_message_id_domain_are_checked_at_load(tmp_path):
    text = VALID.replace('sender_email = "orders@example.com"', 'sender_email = "orders at example"\ncc = ["ok@example.com", "bad@"]')
    text = "[notifier]\nmessage_id_domain = \"mail example\"\n" + text
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text))
    assert error.value.problems == ["notifier.message_id_domain: 'mail example' is not a domain name"]
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, text.replace("mail example", "mail.example")))
    assert error.value.problems == ["templates.notice.sender_email: 'orders at example' is not a valid email address",
                                    "templates.notice.cc: 'bad@' is not a valid email address"]


def test_a_template_without_a_profile_loads_with_a_warning(tmp_path):
    config = load(write(tmp_path, VALID.replace('profile = "main"\n', "")))
    assert any("has no SMTP profile" in w for w in config.warnings())


def test_passwords_come_from_the_environment_or_a_file_and_are_never_shown(tmp_path, monkeypatch):
    profile = SmtpProfile(type="smtp", host="h", username="u", password_env="NOTIFIER_TEST_PASSWORD")
    monkeypatch.delenv("NOTIFIER_TEST_PASSWORD", raising=False)
    with pytest.raises(ProfileError, match="NOTIFIER_TEST_PASSWORD is not set"):
        profile.password()
    monkeypatch.setenv("NOTIFIER_TEST_PASSWORD", "s3cret-value")
    assert profile.password() == "s3cret-value"
    assert "s3cret-value" not in repr(profile) + str(profile)
    secret = tmp_path / "smtp-password"
    secret.write_text("from-a-file\n")
    from_file = SmtpProfile(type="smtp", host="h", username="u", password_file=secret)
    assert from_file.password() == "from-a-file"
    # A file that is there but cannot be read as a password: the error names the file and
    # says why, and shows nothing of what it holds.
    secret.write_bytes(b"from-a-file\xff\xfe\n")
    with pytest.raises(ProfileError) as error:
        from_file.password()
    assert str(error.value) == f"password file {secret} is not UTF-8 text"
    secret.unlink()
    secret.mkdir()
    with pytest.raises(ProfileError) as error:
        from_file.password()
    assert str(error.value) == f"cannot read password file {secret}: Is a directory"


def test_the_configuration_in_use_is_the_path_else_the_environment_else_the_default(tmp_path, monkeypatch):
    from notifier.config import CONFIG_ENV
    from notifier.configured import load_configured

    good = write(tmp_path, VALID)
    bad = tmp_path / "bad.toml"
    bad.write_text(VALID.replace("port = 2525", "port = 0").replace('sender_email = "orders@example.com"',
                                                                    'sender_email = "nobody"'))
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    default = load_configured(data_dir=tmp_path / "data")
    assert default.profiles["local-outbox"].directory == tmp_path / "data" / "mail"
    monkeypatch.setenv(CONFIG_ENV, str(bad))
    with pytest.raises(ConfigError) as error:
        load_configured(data_dir=tmp_path)
    assert str(error.value) == (f"notifier configuration {bad}:\n"
                                "  - profiles.main.port: Input should be greater than or equal to 1")
    assert load_configured(good, data_dir=tmp_path).source == str(good)  # the path comes first
    monkeypatch.setenv(CONFIG_ENV, "")
    assert load_configured(data_dir=tmp_path).source == default.source


def test_every_company_has_a_cool_down_of_a_day_unless_it_sets_its_own(tmp_path):
    config = load(write(tmp_path, VALID + '\n[companies."*".assignments]\nEmailCustomerForBackOrder = "notice"\n'
                                        '[companies.c2]\ncooldown_minutes = 0\n'
                                        '[companies.c2.assignments]\nEmailCustomerForBackOrder = "notice"\n'))
    assert config.assignment("c1").cool_down.minutes == 1440
    assert config.assignment("company-7").cool_down.minutes == 1440  # through "*"
    assert config.assignment("c2").cool_down.minutes == 0
    lowered = load(write(tmp_path, "[notifier]\ncooldown_minutes = 90\n" + VALID))
    assert lowered.assignment("c1").cool_down.minutes == 90


def test_the_example_and_the_built_in_configurations_have_the_cool_down_and_slip_notices_off(tmp_path):
    from notifier.defaults import default_config

    for config in (load(ROOT / "deploy" / "notifier.example.toml"), default_config(tmp_path)):
        for company_id in ("default", "company-1"):
            policy = config.assignment(company_id)
            assert policy.cool_down.minutes == 1440 and policy.slip_template is None
        template = config.templates[config.assignment("company-1").template]
        assert "ExpectedDate" in template.text.names and "ExpectedDate" in template.html.names
        slip = config.templates[config.company("company-1").assignments["EmailCustomerForExpectedDateSlip"]]
        assert "ExpectedDate" in slip.subject.names | slip.text.names


SLIPS = """
[templates.slip]
subject = "Order #?OrderID?#: now expected #?ExpectedDate?#"
sender_email = "orders@example.com"
profile = "main"
text = "Dear #?FirstName?#, now #?ExpectedDate?#"
"""


def test_slip_notices_need_the_setting_and_a_template_assigned_to_their_scenario(tmp_path):
    assigned = SLIPS + VALID + 'EmailCustomerForExpectedDateSlip = "slip"\n'
    assert load(write(tmp_path, assigned)).assignment("c1").slip_template is None  # off by default
    on = "[notifier]\nslip_emails = true\n" + assigned
    assert load(write(tmp_path, on)).assignment("c1").slip_template == "slip"
    company_off = assigned.replace("[companies.c1.assignments]\n", "slip_emails = false\n[companies.c1.assignments]\n")
    assert load(write(tmp_path, "[notifier]\nslip_emails = true\n" + company_off)).assignment("c1").slip_template is None
    with pytest.raises(ConfigError) as error:
        load(write(tmp_path, "[notifier]\nslip_emails = true\n" + SLIPS + VALID))
    assert error.value.problems == [
        "companies.c1: slip_emails is on but no template is assigned to EmailCustomerForExpectedDateSlip"]
    with pytest.raises(ConfigError, match="unknown scenario 'EmailCustomerForSlip'"):
        load(write(tmp_path, VALID + 'EmailCustomerForSlip = "notice"\n'))
