"""fleet layer: scenario + seed -> the simulated phones and when each is online."""

from fedmobile_actors.fleet.availability import AvailabilityModel, availability_model
from fedmobile_actors.fleet.builder import Fleet, build_fleet
from fedmobile_actors.fleet.phone import AvailabilityProcess, PhoneSpec

__all__ = [
    "AvailabilityModel",
    "AvailabilityProcess",
    "Fleet",
    "PhoneSpec",
    "availability_model",
    "build_fleet",
]
