"""``switch.loadgen``: a SIP load generator on the project's sans-IO SIP core (UDP only).

Vendor endpoints (:class:`Uas`) answer INVITEs by a seeded behaviour mix; customer endpoints
(:class:`Uac`) place paced calls with a duration mix; :func:`run_plan` runs several of each in
one event loop; ``python -m switch.loadgen`` is the command line. See docs/loadgen.md.

>>> BehaviourMix.parse("answer=0.9,503=0.1").refuse
{503: 0.1}
"""

from switch.loadgen.mix import (
    Behaviour,
    BehaviourMix,
    DurationMix,
    MixError,
    NumberSource,
)
from switch.loadgen.plan import (
    CustomerSpec,
    LoadPlan,
    PlanError,
    PlanResult,
    VendorSpec,
    load_plan,
    plan_from_dict,
    run_plan,
    run_plan_sync,
)
from switch.loadgen.results import OUTCOMES, CallResult, UacSummary
from switch.loadgen.uac import Uac
from switch.loadgen.uas import Uas, UasStats

__all__ = [
    "OUTCOMES",
    "Behaviour",
    "BehaviourMix",
    "CallResult",
    "CustomerSpec",
    "DurationMix",
    "LoadPlan",
    "MixError",
    "NumberSource",
    "PlanError",
    "PlanResult",
    "Uac",
    "UacSummary",
    "Uas",
    "UasStats",
    "VendorSpec",
    "load_plan",
    "plan_from_dict",
    "run_plan",
    "run_plan_sync",
]
