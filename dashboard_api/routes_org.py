"""``/api/v1/org-units`` and ``/api/v1/stations``: the caller's part of the grid and the
health of its relief stations and sensors.

Read-only; no personal or health data here, so nothing is audited. Scoped to the caller's
subtree through :mod:`shuxin.dashboard_api.queries`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from shuxin.dashboard_api import queries
from shuxin.dashboard_api.access import Permission, Principal
from shuxin.dashboard_api.deps import require
from shuxin.dashboard_api.errors import ERROR_RESPONSES
from shuxin.dashboard_api.schemas import DeviceOut, ListResponse, OrgUnitOut, ReadDb, StationOut

router = APIRouter(prefix="/api/v1", tags=["org"])


@router.get("/org-units", response_model=ListResponse[OrgUnitOut], responses=ERROR_RESPONSES)
def list_org_units(
    db: ReadDb, principal: Annotated[Principal, Depends(require(Permission.ORG_READ))]
) -> ListResponse[OrgUnitOut]:
    """The org units of the caller's subtree (支队 → 大队 → 站), roots first."""
    rows = queries.list_org_units(db, principal.org_unit_id)
    data = [
        OrgUnitOut(
            id=r.id, code=r.code, name_zh=r.name_zh, kind=r.kind.value, parent_id=r.parent_id
        )
        for r in rows
    ]
    return ListResponse[OrgUnitOut](data=data, count=len(data))


@router.get("/stations", response_model=ListResponse[StationOut], responses=ERROR_RESPONSES)
def list_stations(
    db: ReadDb, principal: Annotated[Principal, Depends(require(Permission.STATION_READ))]
) -> ListResponse[StationOut]:
    """Relief stations of the caller's subtree with presence, outbox backlog, reconnects and
    each sensor's connection, battery and skin contact."""
    data = [
        StationOut(
            id=v.station.id,
            org_unit_id=v.station.org_unit_id,
            org_unit_code=v.org_unit_code,
            name_zh=v.station.display_name,
            presence=v.station.presence.value,
            presence_at=v.station.presence_at,
            last_seen_at=v.station.last_seen_at,
            agent_version=v.station.agent_version,
            outbox_backlog=v.station.outbox_backlog,
            outbox_dropped=v.station.outbox_dropped,
            reconnects=v.station.reconnects,
            devices=[
                DeviceOut(
                    device_id=d.device_id,
                    kind=d.profile,
                    connected=d.connected,
                    battery_pct=d.battery_pct,
                    contact=d.contact,
                    firmware=d.firmware,
                    rssi_dbm=d.rssi_dbm,
                    last_seen_at=d.last_seen_at,
                )
                for d in v.devices
            ],
        )
        for v in queries.list_stations(db, principal.org_unit_id)
    ]
    return ListResponse[StationOut](data=data, count=len(data))
