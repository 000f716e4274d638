"""Running instances: the RuntimeDriver contract and the process driver (bubblewrap + cgroups)."""

from shipyard.runtime.base import (
    EffectiveLimits,
    Handle,
    InstanceSpec,
    Isolation,
    Limits,
    ProcessStatus,
    RuntimeDriver,
)
from shipyard.runtime.capabilities import Capabilities, capabilities

__all__ = [
    "Capabilities", "EffectiveLimits", "Handle", "InstanceSpec", "Isolation", "Limits", "ProcessStatus",
    "RuntimeDriver", "capabilities",
]
