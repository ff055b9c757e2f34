"""Unit normalisation at the edge: device units (UCUM codes) -> ortel's canonical unit per quantity.

Devices report pressure in kPa or cm[H2O], current in A or mA, flow in mL/min; storage and rules speak one
unit per quantity so that a threshold of 15 mm[Hg] means the same on every insufflator. Only linear
conversions (value * factor + offset) of a small, reviewed table; an unknown unit passes through unchanged
(the birth then carries the device's own unit, so nothing is mislabelled).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CANONICAL", "Conversion", "conversion_for", "convert"]


@dataclass(frozen=True, slots=True)
class Conversion:
    unit: str  # the canonical UCUM code values are converted to
    factor: float = 1.0
    offset: float = 0.0

    def apply(self, value: float | None) -> float | None:
        return None if value is None else value * self.factor + self.offset


# source UCUM code -> canonical conversion. Factors from the SI definitions (1 mm[Hg] = 133.322387415 Pa,
# 1 cm[H2O] = 98.0665 Pa).
_MMHG_PA = 133.322387415
CANONICAL: dict[str, Conversion] = {
    # pressure -> mm[Hg]
    "mm[Hg]": Conversion("mm[Hg]"),
    "kPa": Conversion("mm[Hg]", 1000.0 / _MMHG_PA),
    "Pa": Conversion("mm[Hg]", 1.0 / _MMHG_PA),
    "hPa": Conversion("mm[Hg]", 100.0 / _MMHG_PA),
    "mbar": Conversion("mm[Hg]", 100.0 / _MMHG_PA),
    "cm[H2O]": Conversion("mm[Hg]", 98.0665 / _MMHG_PA),
    "[psi]": Conversion("mm[Hg]", 6894.757293168 / _MMHG_PA),
    # current -> mA (ESU leakage and neutral-electrode currents live in the mA range)
    "mA": Conversion("mA"),
    "A": Conversion("mA", 1000.0),
    "uA": Conversion("mA", 0.001),
    # power -> W
    "W": Conversion("W"),
    "kW": Conversion("W", 1000.0),
    "mW": Conversion("W", 0.001),
    # flow -> L/min
    "L/min": Conversion("L/min"),
    "mL/min": Conversion("L/min", 0.001),
    "mL/s": Conversion("L/min", 0.06),
    "L/s": Conversion("L/min", 60.0),
    # temperature -> Cel
    "Cel": Conversion("Cel"),
    "K": Conversion("Cel", 1.0, -273.15),
    "[degF]": Conversion("Cel", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    # time -> s
    "s": Conversion("s"),
    "ms": Conversion("s", 0.001),
    "min": Conversion("s", 60.0),
    # volume -> mL
    "mL": Conversion("mL"),
    "L": Conversion("mL", 1000.0),
    # impedance -> Ohm
    "Ohm": Conversion("Ohm"),
    "kOhm": Conversion("Ohm", 1000.0),
    # voltage -> V
    "V": Conversion("V"),
    "kV": Conversion("V", 1000.0),
    "mV": Conversion("V", 0.001),
}


def conversion_for(unit: str) -> Conversion:
    """The conversion from ``unit`` to its canonical unit; identity (same unit) when the unit is unknown."""
    return CANONICAL.get(unit) or Conversion(unit)


def convert(value: float | None, unit: str) -> tuple[float | None, str]:
    conv = conversion_for(unit)
    return conv.apply(value), conv.unit
