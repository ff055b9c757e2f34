"""Device models, one module per family, and the registry that names them."""

from __future__ import annotations

from typing import Any

import numpy as np

from simulators.devices.anaesthesia import AnaesthesiaWorkstation
from simulators.devices.base import Chunk, DeviceModel, Line, Segment
from simulators.devices.camera import Camera, LightSource
from simulators.devices.esu import Esu
from simulators.devices.insufflator import Insufflator
from simulators.devices.or_light import OrLight
from simulators.devices.robot import SurgicalRobot
from simulators.devices.smoke_evacuator import SmokeEvacuator
from simulators.devices.stapler import Stapler
from simulators.devices.suction_irrigation import SuctionIrrigation
from simulators.devices.tourniquet import Tourniquet
from simulators.devices.ultrasonic import Ultrasonic
from simulators.devices.vessel_sealer import VesselSealer
from simulators.devices.warming import PatientWarming

__all__ = ["FAMILIES", "Chunk", "DeviceModel", "Line", "Segment", "make_device"]

FAMILIES: dict[str, type[DeviceModel]] = {
    cls.family: cls
    for cls in (
        Esu,
        Ultrasonic,
        VesselSealer,
        Stapler,
        Insufflator,
        SuctionIrrigation,
        Camera,
        LightSource,
        SurgicalRobot,
        SmokeEvacuator,
        PatientWarming,
        AnaesthesiaWorkstation,
        Tourniquet,
        OrLight,
    )
}


def make_device(family: str, *, device_id: str, rng: np.random.Generator, rate_hz: float | None = None,
                **params: Any) -> DeviceModel:
    try:
        cls = FAMILIES[family]
    except KeyError:
        raise KeyError(f"unknown device family {family!r}; known: {', '.join(sorted(FAMILIES))}") from None
    return cls(device_id=device_id, rng=rng, rate_hz=rate_hz, **params)
