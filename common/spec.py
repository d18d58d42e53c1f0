"""Typed run specification: the single source of truth for every spec key.

YAML files under specs/ are data validated against :class:`Spec`. Unknown keys are errors.
``--set a.b=value`` overrides are applied to the raw mapping before validation and must
name a key the schema knows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


class SpecError(Exception):
    """A spec that cannot be used; the message names the file and the key or value."""


class _Section(BaseModel):
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True
    )


class Budget(_Section):
    env_steps: PositiveInt
    """Total environment steps collected across all tasks before the run ends."""


class Eval(_Section):
    every_env_steps: PositiveInt = 10_000
    """Evaluate every this many collected env steps (and once at the end)."""
    episodes: PositiveInt = 10
    """Deterministic evaluation episodes per task."""
    video_every_env_steps: PositiveInt | None = None
    """Record one noise-free episode per task as a video every this many env steps (off by
    default): ``videos/<task>/<env steps>.mp4`` in the run directory, TensorBoard, wandb."""


class Collect(_Section):
    envs_per_observer: PositiveInt = 2
    """Vectorized envs per task inside each observer."""
    episodes_per_task: PositiveInt = 2
    """Episodes per task in one task list sent to an observer (one RPC message back)."""
    orders_in_flight: PositiveInt = 2
    """Task lists queued at each observer, so it never idles between them."""
    noise_std: Annotated[float, Field(ge=0)] = 0.2
    """Gaussian exploration noise, as a fraction of the action range."""
    random_eps: Probability = 0.3
    """Probability of a uniformly random action at each step."""
    grasped_start_share: dict[str, Probability] = {}
    """Per task name: share of exploring training episodes that start with the object
    already between the fingers (the HER paper's pick-and-place aid; FetchPickAndPlace
    only). Evaluation and noise-free episodes always start as the env does."""
    weights_every_updates: PositiveInt = 50
    """Observers get a fresh copy of the policy every this many learner updates (K)."""
    episode_queue_size: PositiveInt = 64
    """Bound of the asyncio queue between RPC replies and the replay buffers."""


class Her(_Section):
    strategy: Literal["future", "final", "episode", "none"] = "future"
    """Which achieved goal replaces the desired goal in a relabeled transition."""
    k: Annotated[float, Field(ge=0)] = 4
    """Relabeled share is k/(k+1) (k=4 relabels 80% of sampled transitions)."""


class Replay(_Section):
    capacity_per_task: PositiveInt = 1_000_000
    """Transitions kept per task (whole episodes, oldest overwritten first)."""
    moved_goal_share: Probability | dict[str, Probability] = 0.0
    """Share of sampled episodes drawn in proportion to how far their achieved goal travelled
    (the object, on Push-like tasks; a simple energy-based prioritization), the rest
    uniformly. 0: uniform. One share for every task, or a share per task name (tasks not
    named: 0). Goal-based tasks only (Meta-World's are always uniform)."""
    her: Her = Her()

    def moved_goal_share_of(self, task: str) -> float:
        """``task``'s moved-goal share."""
        share = self.moved_goal_share
        return share.get(task, 0.0) if isinstance(share, dict) else share


class Learner(_Section):
    algo: Literal["td3", "ddpg", "sac"] = "td3"
    """td3: twin critics, target smoothing, delayed actor; ddpg: one critic, no smoothing;
    sac: twin critics, a tanh-Gaussian actor that explores by sampling (``collect.noise_std``
    and ``collect.random_eps`` unused) and a learned entropy temperature per task."""
    batch_size: PositiveInt = 256
    """Transitions per update, split across tasks by the scheduler's batch shares."""
    updates_per_env_step: PositiveFloat = 0.5
    """Update-to-data ratio: learner updates per collected env step."""
    start_after_env_steps: NonNegInt = 1_000
    """Collect this many env steps before the first update."""
    collect_ahead_env_steps: PositiveInt = 2_000
    """How far collection may run ahead of what the update-to-data ratio has consumed."""
    hidden_sizes: list[PositiveInt] = [256, 256, 256]
    """Hidden layer widths of the actor and each critic."""
    actor_lr: PositiveFloat = 1e-3
    """Adam learning rate of the actor."""
    critic_lr: PositiveFloat = 1e-3
    """Adam learning rate of the critics."""
    gamma: Annotated[float, Field(gt=0, lt=1)] = 0.98
    """Discount; TD targets are clipped to the return range [-1/(1-gamma), 0]."""
    tau: Annotated[float, Field(gt=0, le=1)] = 0.05
    """Polyak step of the target networks."""
    target_update_every: PositiveInt = 40
    """Critic updates between two Polyak steps of the targets (HER's once-per-cycle)."""
    action_l2: Annotated[float, Field(ge=0)] = 1.0
    """Penalty on the squared (pre-scaling) actor output."""
    policy_delay: PositiveInt = 2
    """TD3: the actor updates every this many critic updates (the target networks move
    every ``target_update_every``)."""
    target_noise: Annotated[float, Field(ge=0)] = 0.2
    """TD3: standard deviation of the Gaussian noise on the target action (smoothing)."""
    target_noise_clip: Annotated[float, Field(ge=0)] = 0.5
    """TD3: the target action noise is clipped to [-clip, clip]."""
    initial_temperature: PositiveFloat = 0.1
    """SAC: every task's entropy temperature α at the start."""
    target_entropy_per_action_dim: float = -1.0
    """SAC: each task's entropy target is this times its action size (-1: the usual -|A|)."""
    device: str = "auto"
    """auto (cuda if available), cpu, cuda, cuda:N."""
    torch_threads: PositiveInt = 1
    """Intra-op threads of the learner process."""
    prefetch: bool = True
    """Sample, encode and compute the TD targets of the next batch on a second thread while
    the learner trains on this one (one learner rank, joint update)."""


class Normalizer(_Section):
    clip: PositiveFloat = 5.0
    """Normalized observations and goals are clipped to [-clip, clip]."""
    eps: PositiveFloat = 0.01
    """Floor of the standard deviation."""


class Scheduler(_Section):
    name: Literal["uniform", "round_robin", "learning_progress", "learnability", "curriculum",
                  "sequential"] = "uniform"
    """Which tasks observers collect next and each task's share of a batch (docs/multitask.md)."""
    noise_free_share: Probability | None = None
    """Share of collection orders run without exploration noise; their success is the
    feedback of learning_progress, learnability, curriculum, sequential and
    learning_progress weighting (they are trained on too). Default: 0.1 with one of those,
    else 0."""
    window: PositiveInt = 50
    """Noise-free episodes per task in one success window (learning_progress compares two)."""
    epsilon: Probability = 0.2
    """learning_progress, learnability: share of episodes spread uniformly over all tasks
    (the exploration floor; CURIOUS uses 0.4: 0.4/N + 0.6·LP/ΣLP)."""
    noise_floor_z: Annotated[float, Field(ge=0)] = 2.0
    """learning_progress: a change in success below this many standard errors of the
    difference of two windows counts as no progress (coin-flip tasks stay at ε/K); 0 is
    CURIOUS' plain |Δ success|."""
    order: list[str] | None = None
    """curriculum, sequential: the task order (default: the order of ``tasks``)."""
    threshold: Probability = 0.9
    """curriculum, sequential: noise-free success over one window that passes a task."""
    floor_share: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """curriculum: collection and batch share each passed task keeps."""


class Weighting(_Section):
    name: Literal["mean", "learning_progress", "loss", "famo", "pcgrad"] = "mean"
    """Per-task weights of the losses in the joint update (docs/multitask.md)."""
    famo_lr: PositiveFloat = 0.025
    """famo: step size of the task logits."""
    famo_decay: Annotated[float, Field(ge=0)] = 0.001
    """famo: weight decay of the task logits (pulls weights back towards equal)."""


class Meta(_Section):
    update: Literal["none", "reptile", "fomaml"] = "none"
    """none: joint update; reptile/fomaml: first-order meta-update across tasks."""
    inner_steps: PositiveInt = 4
    """TD3 updates per task inside one meta-update (k), each on a batch of that task only."""
    outer_step: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Outer step ε: reptile moves ε of the way to the mean adapted weights; fomaml's outer
    Adam steps along the mean gradient at the adapted weights with ε × the learning rate."""
    inner_optimizer: Literal["adam", "sgd"] = "adam"
    """Inner-loop optimizer (learning rates from the learner section)."""


class Model(_Section):
    arch: Literal["onehot", "multihead", "ptsl", "lora"] = "onehot"
    """onehot: shared MLP + task one-hot; multihead: an output layer per task; ptsl: shared
    layers plus projected low-rank task-specific layers; lora: per-task low-rank adapters."""
    rank: PositiveInt = 8
    """ptsl, lora: size of the low-rank task-specific corrections."""
    freeze: Literal["none", "hidden", "shared"] = "none"
    """none: train all; hidden: freeze the shared hidden layers; shared: train only
    task-specific parameters (heads, adapters)."""


class Transfer(_Section):
    from_checkpoint: str | None = None
    """Start from this checkpoint's networks (tasks matched by name, new tasks added)."""
    lr_multiplier: PositiveFloat = 1.0
    """Learning rates of a transferred run are multiplied by this."""


class Wandb(_Section):
    mode: Literal["offline", "online", "disabled"] = "offline"
    """offline needs no network; online also needs WANDB_API_KEY in the environment."""
    project: str = "fetch-mt"
    """wandb project."""
    entity: str | None = None
    """wandb entity (team or user); None: wandb's default."""


class Metrics(_Section):
    every_updates: PositiveInt = 100
    """Emit training scalars every this many learner updates."""
    signals_every_updates: NonNegInt = 0
    """Record per-task learning signals (signals/td_abs, signals/grad_norm, signals/grad_cos,
    signals/conflict_cos) every this many updates, at the cost of about one backward of a batch;
    0: never."""
    queue_size: PositiveInt = 1_000
    """Bound of the metrics queue; records beyond it are dropped and counted."""
    tensorboard: bool = True
    """Write TensorBoard event files in the run directory."""
    wandb: Wandb = Wandb()
    progress_bar: bool = True
    """A tqdm progress bar on stderr."""


class Checkpoint(_Section):
    every_env_steps: PositiveInt = 50_000
    """Periodic checkpoint interval; a final checkpoint is always written."""


class Distributed(_Section):
    master_addr: str = "127.0.0.1"
    """Address the principal agent binds for torch RPC."""
    master_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """0 picks a free port (local runs); multi-host roles need a fixed port."""
    world_size: Annotated[int, Field(ge=2)] | None = None
    """Multi-host roles: the agent plus every observer (``--world-size`` wins)."""
    rank: PositiveInt | None = None
    """Multi-host observer role: this observer's rank, 1..world_size-1 (``--rank`` wins)."""
    rpc_timeout_s: PositiveFloat = 120.0
    """Per-call timeout of RPC requests to observers."""
    start_timeout_s: PositiveFloat = 120.0
    """How long the agent waits for observers to join."""
    transport: Literal["uv", "shm"] = "uv"
    """TensorPipe transport between agent and observers: uv (TCP via libuv, idle threads
    sleep) or shm (shared memory on one host, uv across hosts; its reactor threads
    busy-poll, about 0.4 core per process on the 2-core box: docs/benchmarks.md)."""
    observer_restarts: NonNegInt = 3
    """Local runs: how many lost observers the agent restarts itself (0: none)."""


class Spec(_Section):
    tasks: Annotated[list[str], Field(min_length=1)]
    """Env ids trained by the one shared policy."""
    seed: NonNegInt = 0
    """Seeds the networks, replay sampling, the scheduler and every episode's reset."""
    observers: PositiveInt = 1
    """Observer processes started by main.py."""
    budget: Budget
    eval: Eval = Eval()
    collect: Collect = Collect()
    replay: Replay = Replay()
    learner: Learner = Learner()
    normalizer: Normalizer = Normalizer()
    scheduler: Scheduler = Scheduler()
    weighting: Weighting = Weighting()
    meta: Meta = Meta()
    model: Model = Model()
    transfer: Transfer = Transfer()
    metrics: Metrics = Metrics()
    checkpoint: Checkpoint = Checkpoint()
    distributed: Distributed = Distributed()

    @field_validator("tasks", mode="before")
    @classmethod
    def _benchmark_names_expanded(cls, tasks: Any) -> Any:
        """``MT10`` stands for Meta-World's ten MT10 tasks."""
        from common.envs import MT10

        if not isinstance(tasks, list):
            return tasks
        return [name for task in tasks for name in (MT10 if task == "MT10" else [task])]

    @field_validator("tasks")
    @classmethod
    def _known_distinct_tasks(cls, tasks: list[str]) -> list[str]:
        from common.envs import FAMILIES, family_of

        relabels = {}
        for task in tasks:
            try:
                relabels[task] = family_of(task).RELABELS_GOALS
            except ValueError:
                raise ValueError(
                    f"unknown env id {task!r} (known: {', '.join(sorted(FAMILIES))}, "
                    "a Meta-World v3 task name such as reach-v3, or MT10)") from None
        if len(set(tasks)) != len(tasks):
            raise ValueError("each task may appear once")
        if len(set(relabels.values())) > 1:
            dense = [t for t, r in relabels.items() if not r]
            goal = [t for t, r in relabels.items() if r]
            raise ValueError(
                f"Meta-World tasks ({', '.join(dense)}) cannot share a run with goal-based "
                f"tasks ({', '.join(goal)}): dense, never relabeled 500-step episodes next to "
                "relabeled sparse ones are not supported; run them apart")
        return tasks

    def needs_success_feedback(self) -> bool:
        """Whether a strategy reads the success of noise-free episodes."""
        return (self.scheduler.name in ("learning_progress", "learnability", "curriculum",
                                     "sequential")
                or self.weighting.name == "learning_progress")

    @model_validator(mode="after")
    def _strategies_fit_together(self) -> Spec:
        order = self.scheduler.order
        if order is not None and sorted(order) != sorted(self.tasks):
            raise ValueError(
                f"scheduler.order must list each of tasks {self.tasks} once, got {order}"
            )
        if self.scheduler.noise_free_share == 0 and self.needs_success_feedback():
            raise ValueError("scheduler.noise_free_share: 0 leaves the success feedback of "
                             f"{self.scheduler.name}/{self.weighting.name} empty")
        if self.model.freeze == "shared" and self.model.arch == "onehot":
            raise ValueError("model.freeze: shared needs task-specific parameters; "
                             "model.arch onehot has none (use multihead, ptsl or lora)")
        if self.model.arch in ("multihead", "ptsl") and not self.learner.hidden_sizes:
            raise ValueError(f"model.arch {self.model.arch} needs learner.hidden_sizes")
        for key, per_task in (("replay.moved_goal_share", self.replay.moved_goal_share),
                              ("collect.grasped_start_share",
                               self.collect.grasped_start_share)):
            if isinstance(per_task, dict) and (unknown := sorted(set(per_task)
                                                                 - set(self.tasks))):
                raise ValueError(f"{key} names {unknown}, not in tasks {self.tasks}")
        from common.envs import FetchFamily

        if ungraspable := sorted(set(self.collect.grasped_start_share)
                                 - set(FetchFamily.GRASPABLE)):
            raise ValueError(f"collect.grasped_start_share names {ungraspable}: only "
                             f"{', '.join(FetchFamily.GRASPABLE)} can start grasped")
        if self.meta.update != "none" and self.weighting.name == "pcgrad":
            raise ValueError("weighting.name pcgrad: a meta-update's inner steps see one task "
                             "at a time, nothing to project (use mean with meta.update)")
        return self


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise SpecError(f"--set {item!r}: expected KEY=VALUE")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as exc:
        raise SpecError(f"--set {item!r}: value is not valid YAML ({exc})") from None
    return key.split("."), value


def _apply_override(data: dict[str, Any], path: list[str], value: Any, item: str) -> None:
    model: type[BaseModel] | None = Spec
    node = data
    for depth, part in enumerate(path):
        if model is None or part not in model.model_fields:
            raise SpecError(f"--set {item!r}: no spec key {'.'.join(path[: depth + 1])!r}")
        annotation = model.model_fields[part].annotation
        last = depth == len(path) - 1
        if last:
            node[part] = value
            return
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
            else None
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def _format_validation(source: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown key {loc!r}"
    if err["type"] == "missing":
        return f"{source}: missing required key {loc!r}"
    msg = err["msg"].removeprefix("Value error, ")
    if not err["loc"]:  # a rule across keys names them in its message
        return f"{source}: {msg}"
    return f"{source}: {loc}: {msg} (got {err.get('input')!r})"


def validate_spec(data: Any, source: str) -> Spec:
    """Validate a raw mapping; raise :class:`SpecError` naming ``source`` and the key."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the spec must be a mapping of keys, got {type(data).__name__}")
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation(source, exc)) from None


def load_spec(path: str | Path, overrides: list[str] | None = None) -> Spec:
    """Read a YAML spec, apply ``--set`` overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a UTF-8 text file (byte {exc.start} is not UTF-8); "
                        "a spec is YAML text") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: malformed YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the spec must be a mapping of keys, got {type(data).__name__}")
    for item in overrides or []:
        keys, value = _parse_override(item)
        _apply_override(data, keys, value, item)
    return validate_spec(data, str(path))


def dump_spec(spec: Spec, path: str | Path) -> None:
    """Write the fully resolved spec (defaults included) as YAML."""
    Path(path).write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
