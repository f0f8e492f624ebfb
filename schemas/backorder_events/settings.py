"""Client settings (backorder-rules.md §2) and the partial update carried by SettingsChanged."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from .envelope import Id, OnlySetFields, absent
from .limits import MAX_DAYS_TO_BE_BACK

DaysField = Annotated[StrictInt, Field(ge=0, le=MAX_DAYS_TO_BE_BACK)]


class BackorderSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    enable_backorder_workflow: bool = True
    max_days_to_be_back: DaysField | None = None
    update_on_order_status_change: bool = False
    stop_marking_on_create: bool = False
    use_payment_date: bool = False
    warehouse_based: bool = False
    default_warehouse_id: Id | None = None
    exclude_dropship_qty: bool = True
    exclude_unsellable_qty: bool = True
    consider_replacement_sku_qty: bool = False
    include_authorized: bool = False
    include_on_hold: bool = False
    include_unpaid_and_partially_paid: bool = True
    prioritize_fully_shippable: bool = False
    prioritize_rush: bool = False
    prioritize_picked: bool = False
    use_shipping_containers_for_po: bool = False
    send_magento_backorder_tags: bool = True
    publish_expected_date_changes: bool = False

    def apply(self, patch: SettingsPatch) -> BackorderSettings:
        """The settings with the fields present in `patch` replaced."""
        return self.model_copy(update={k: getattr(patch, k) for k in patch.model_fields_set})


class SettingsPatch(OnlySetFields):
    """Any subset of the settings; consumers apply only `model_fields_set`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enable_backorder_workflow: bool = absent()
    max_days_to_be_back: DaysField | None = absent()
    update_on_order_status_change: bool = absent()
    stop_marking_on_create: bool = absent()
    use_payment_date: bool = absent()
    warehouse_based: bool = absent()
    default_warehouse_id: Id | None = absent()
    exclude_dropship_qty: bool = absent()
    exclude_unsellable_qty: bool = absent()
    consider_replacement_sku_qty: bool = absent()
    include_authorized: bool = absent()
    include_on_hold: bool = absent()
    include_unpaid_and_partially_paid: bool = absent()
    prioritize_fully_shippable: bool = absent()
    prioritize_rush: bool = absent()
    prioritize_picked: bool = absent()
    use_shipping_containers_for_po: bool = absent()
    send_magento_backorder_tags: bool = absent()
    publish_expected_date_changes: bool = absent()
