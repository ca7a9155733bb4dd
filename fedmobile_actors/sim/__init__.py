"""sim layer: the virtual clock and the round policies (deadline with over-commit, buffered
async). Pure: given the fleet and the task costs it decides who is dispatched, who drops, who is
late or stale, and in which order updates are applied; it never trains anything itself."""

from fedmobile_actors.fleet.builder import Fleet
from fedmobile_actors.scenario.schema import Scenario
from fedmobile_actors.sim.async_buffer import AsyncPolicy
from fedmobile_actors.sim.clock import VirtualClock
from fedmobile_actors.sim.deadline import DeadlinePolicy
from fedmobile_actors.sim.policy import RoundPolicy
from fedmobile_actors.sim.staleness import StalenessWeight
from fedmobile_actors.sim.tasks import Outcome, Step, Task, TaskCosts
from fedmobile_actors.sim.timing import TaskFate, TaskModel, TaskTiming, task_timing


def make_policy(scenario: Scenario, fleet: Fleet, costs: TaskCosts) -> RoundPolicy:
    """The round policy ``scenario.rounds.policy`` names, over this fleet and these costs."""
    model = TaskModel(fleet, costs, scenario.fleet.slowdown, scenario.seed)
    if scenario.rounds.policy == "async":
        return AsyncPolicy(fleet, model, scenario.rounds, scenario.seed)
    return DeadlinePolicy(fleet, model, scenario.rounds, scenario.seed)


__all__ = [
    "AsyncPolicy",
    "DeadlinePolicy",
    "Outcome",
    "RoundPolicy",
    "StalenessWeight",
    "Step",
    "Task",
    "TaskCosts",
    "TaskFate",
    "TaskModel",
    "TaskTiming",
    "VirtualClock",
    "make_policy",
    "task_timing",
]
