"""BackorderSettings defaults (backorder-rules.md §2) and SettingsPatch semantics."""

from __future__ import annotations

from typing import Any

import pytest
from backorder_events import BackorderSettings, SettingsPatch
from pydantic import ValidationError

DEFAULTS = {
    "enable_backorder_workflow": True,
    "max_days_to_be_back": None,
    "update_on_order_status_change": False,
    "stop_marking_on_create": False,
    "use_payment_date": False,
    "warehouse_based": False,
    "default_warehouse_id": None,
    "exclude_dropship_qty": True,
    "exclude_unsellable_qty": True,
    "consider_replacement_sku_qty": False,
    "include_authorized": False,
    "include_on_hold": False,
    "include_unpaid_and_partially_paid": True,
    "prioritize_fully_shippable": False,
    "prioritize_rush": False,
    "prioritize_picked": False,
    "use_shipping_containers_for_po": False,
    "send_magento_backorder_tags": True,
    "publish_expected_date_changes": False,  # docs/behaviour.md, "Expected date per line"
}


def test_defaults_match_the_rules() -> None:
    assert BackorderSettings().model_dump() == DEFAULTS


def test_patch_has_every_setting() -> None:
    assert set(SettingsPatch.model_fields) == set(BackorderSettings.model_fields)


def test_settings_are_frozen_and_strict_about_names() -> None:
    settings = BackorderSettings()
    with pytest.raises(ValidationError):
        settings.warehouse_based = True  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        BackorderSettings(warehouse_basd=True)  # type: ignore[call-arg]


def test_apply_changes_only_the_fields_present() -> None:
    settings = BackorderSettings(include_on_hold=True)
    patch = SettingsPatch.model_validate({"max_days_to_be_back": 30, "warehouse_based": True})
    assert patch.model_fields_set == {"max_days_to_be_back", "warehouse_based"}
    updated = settings.apply(patch)
    assert updated == BackorderSettings(include_on_hold=True, max_days_to_be_back=30,
                                        warehouse_based=True)
    assert settings.max_days_to_be_back is None  # the original is untouched


def test_apply_explicit_null_clears_a_nullable_setting() -> None:
    settings = BackorderSettings(max_days_to_be_back=10, default_warehouse_id="WH-1")
    patch = SettingsPatch.model_validate({"max_days_to_be_back": None})
    updated = settings.apply(patch)
    assert updated.max_days_to_be_back is None
    assert updated.default_warehouse_id == "WH-1"


def test_empty_patch_changes_nothing() -> None:
    settings = BackorderSettings(prioritize_rush=True)
    assert settings.apply(SettingsPatch()) == settings


def test_patch_dumps_only_what_it_sets() -> None:
    patch = SettingsPatch.model_validate({"include_authorized": True, "max_days_to_be_back": None})
    assert patch.model_dump() == {"include_authorized": True, "max_days_to_be_back": None}
    assert SettingsPatch.model_validate_json(patch.model_dump_json()) == patch


@pytest.mark.parametrize(("patch", "field", "msg"), [
    ({"max_days_to_be_back_": 3}, "max_days_to_be_back_", "Extra inputs are not permitted"),
    ({"enable_backorder_workflow": None}, "enable_backorder_workflow",
     "Input should be a valid boolean"),
    ({"max_days_to_be_back": -1}, "max_days_to_be_back", "greater than or equal to 0"),
    ({"max_days_to_be_back": 2.5}, "max_days_to_be_back", "Input should be a valid integer"),
    ({"max_days_to_be_back": "3"}, "max_days_to_be_back", "Input should be a valid integer"),
    ({"default_warehouse_id": ""}, "default_warehouse_id", "at least 1 character"),
    ({"warehouse_based": "perhaps"}, "warehouse_based", "Input should be a valid boolean"),
])
def test_bad_patches_rejected(patch: dict[str, Any], field: str, msg: str) -> None:
    with pytest.raises(ValidationError) as exc:
        SettingsPatch.model_validate(patch)
    error = exc.value.errors()[0]
    assert error["loc"] == (field,)
    assert msg in error["msg"]


def test_integer_default_warehouse_id_becomes_a_string() -> None:
    assert SettingsPatch.model_validate({"default_warehouse_id": 3}).default_warehouse_id == "3"


def test_backorder_changed_without_expected_dates_still_parses_and_older_readers_accept_them() -> None:
    from backorder_events.outputs import BackorderLine
    from pydantic import BaseModel, ConfigDict

    old = {"line_id": "1", "sku": "X", "qty": 2, "backorder_qty": 2, "previous_backorder_qty": 0}
    line = BackorderLine.model_validate(old)
    assert (line.expected_date, line.previous_expected_date) == (None, None)

    class OlderLine(BaseModel):  # a consumer built before the dates, ignoring extra fields
        model_config = ConfigDict(extra="ignore")
        line_id: str
        backorder_qty: int

    newer = {**old, "expected_date": "2025-05-10T00:00:00Z", "previous_expected_date": None}
    assert OlderLine.model_validate(newer).backorder_qty == 2
    assert BackorderLine.model_validate(newer).expected_date.day == 10
