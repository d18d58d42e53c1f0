"""Several gymnasium-robotics Fetch envs stepped by direct MuJoCo calls.

``MujocoFetchEnv.step`` spends as much CPU in Python as in the physics: every step looks up
joint and site ids by name, builds lists of joint positions, and wraps the result in
gymnasium's checkers. :class:`FetchStepper` does the same arithmetic in the same order with
the ids looked up once, so its observations and successes are bit for bit the env's own
(``tests/test_fetch_stepper.py`` checks this step by step). Resets still go through the
env's own ``reset``: goal and object sampling stay gymnasium-robotics' code.

Only what an episode needs is computed: the reward is left to HER's relabelling, and the
time limit is kept by the caller, which always steps whole episodes.

``reset`` can also start an episode with the object held between the fingers (Fetch tasks
with an object and a gripper: PickAndPlace), the exploration aid of the HER paper
(Andrychowicz et al. 2017, pick-and-place: half the training episodes start with the box
grasped): the goal stays the env's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium_robotics.utils import rotations

POSITION_SCALE = 0.05
"""``MujocoFetchEnv._set_action``'s largest gripper displacement per step."""
GRIPPER_ROTATION = np.array([1.0, 0.0, 1.0, 0.0])
"""The fixed end-effector quaternion delta ``_set_action`` adds to the mocap every step."""
GRASP_OPENING = 0.0255
"""Each finger's joint position in a grasped start: just over the cube's half width
(0.025), so the first closing action squeezes it."""


class _FetchHandles:
    """Ids and addresses of one Fetch model, looked up by name once."""

    def __init__(self, env: gym.Env) -> None:
        model = env.model
        site = mujoco.mjtObj.mjOBJ_SITE
        self.grip = mujoco.mj_name2id(model, site, "robot0:grip")
        self.object = mujoco.mj_name2id(model, site, "object0") if env.has_object else -1
        joint = (mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "object0:joint")
                 if env.has_object else -1)
        self.object_qpos = model.jnt_qposadr[joint] if joint >= 0 else -1
        self.object_qvel = model.jnt_dofadr[joint] if joint >= 0 else -1
        robot_joints = [i for i in range(model.njnt)
                        if mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, i)
                        .startswith("robot")]
        fingers = robot_joints[-2:]
        self.finger_qpos = np.array([model.jnt_qposadr[j] for j in fingers])
        self.finger_qvel = np.array([model.jnt_dofadr[j] for j in fingers])
        self.welds = [
            (model.body_mocapid[a], b) if model.body_mocapid[a] != -1
            else (model.body_mocapid[b], a)
            for kind, a, b in zip(model.eq_type, model.eq_obj1id, model.eq_obj2id, strict=True)
            if kind == mujoco.mjtEq.mjEQ_WELD
        ]
        """(mocap id, welded body id) of each weld: the mocap is reset onto its body."""
        self.actuators = [
            (i, model.jnt_qposadr[model.actuator_trnid[i, 0]]
             if model.actuator_biastype[i] != 0 else -1)
            for i in range(model.nu)
        ]
        """(actuator, qpos address it is relative to, or -1 for a direct control)."""
        self.dt = env.n_substeps * model.opt.timestep


class FetchStepper:
    """``len(envs)`` unwrapped Fetch envs of one task, reset and stepped together.

    ``reset`` and ``step`` return the batched ``observation``/``achieved_goal``/
    ``desired_goal`` dict a gymnasium vector env would; ``step`` also returns
    ``info["is_success"]`` per env.
    """

    def __init__(self, envs: Sequence[gym.Env]) -> None:
        self.wrapped = list(envs)
        self.envs = [env.unwrapped for env in envs]
        self._handles = [_FetchHandles(env) for env in self.envs]
        self._low, self._high = self.envs[0].action_space.low, self.envs[0].action_space.high
        nv = self.envs[0].model.nv
        self._jacp, self._jacr = np.zeros((3, nv)), np.zeros((3, nv))

    def reset(self, seeds: Sequence[int], grasped: Sequence[bool] | None = None
              ) -> dict[str, np.ndarray]:
        """Each env reset with its seed (the env's own reset: goal and object sampling);
        the envs flagged in ``grasped`` then hold the object between their fingers."""
        if grasped is not None and len(grasped) != len(seeds):
            raise ValueError(f"{len(grasped)} grasped flags for {len(seeds)} envs")
        obs = [env.reset(seed=int(seed))[0] for env, seed in zip(self.wrapped, seeds,
                                                                  strict=True)]
        for i, grasp in enumerate(grasped if grasped is not None else []):
            if grasp:
                env, ids = self.envs[i], self._handles[i]
                self._grasp(env, ids)
                observation, achieved = self._observe(env, ids)
                obs[i] = {"observation": observation, "achieved_goal": achieved,
                          "desired_goal": env.goal.copy()}
        return {key: np.stack([o[key] for o in obs]) for key in obs[0]}

    @staticmethod
    def _grasp(env: gym.Env, ids: _FetchHandles) -> None:
        """Put the object, at rest and upright, between the open fingers at the grip."""
        if ids.object_qpos < 0 or env.block_gripper:
            raise ValueError(f"{env.spec.id}: a grasped start needs an object and a gripper "
                             "(FetchPickAndPlace)")
        data = env.data
        data.qpos[ids.finger_qpos] = GRASP_OPENING
        data.qvel[ids.finger_qvel] = 0.0
        data.qpos[ids.object_qpos:ids.object_qpos + 3] = data.site_xpos[ids.grip]
        data.qpos[ids.object_qpos + 3:ids.object_qpos + 7] = (1.0, 0.0, 0.0, 0.0)
        data.qvel[ids.object_qvel:ids.object_qvel + 6] = 0.0
        mujoco.mj_forward(env.model, env.data)

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One step of every env: the batched observation dict and ``is_success`` (float32)."""
        actions = np.clip(actions, self._low, self._high)
        position = actions[:, :3] * POSITION_SCALE
        observations, achieved, desired, success = [], [], [], []
        for i, (env, ids) in enumerate(zip(self.envs, self._handles, strict=True)):
            self._act(env, ids, position[i], actions[i, 3])
            mujoco.mj_step(env.model, env.data, nstep=env.n_substeps)
            if env.block_gripper:
                env.data.qpos[ids.finger_qpos] = 0.0
                mujoco.mj_forward(env.model, env.data)
            obs, goal = self._observe(env, ids)
            observations.append(obs)
            achieved.append(goal)
            desired.append(env.goal.copy())
            distance = np.linalg.norm(goal - env.goal, axis=-1)
            success.append((distance < env.distance_threshold).astype(np.float32))
        batched = {"observation": np.stack(observations), "achieved_goal": np.stack(achieved),
                   "desired_goal": np.stack(desired)}
        return batched, np.array(success)

    @staticmethod
    def _act(env: gym.Env, ids: _FetchHandles, position: np.ndarray, gripper: np.float32
             ) -> None:
        """``MujocoFetchEnv._set_action``: finger controls, then the mocap moved by
        ``position`` from where its welded body is now."""
        data = env.data
        finger = np.float32(0.0) if env.block_gripper else gripper
        for actuator, qpos_address in ids.actuators:
            value = float(finger)
            data.ctrl[actuator] = value if qpos_address < 0 else data.qpos[qpos_address] + value
        for mocap, body in ids.welds:
            data.mocap_pos[mocap][:] = data.xpos[body]
            data.mocap_quat[mocap][:] = data.xquat[body]
        data.mocap_pos[:] = data.mocap_pos + position.astype(np.float64)
        data.mocap_quat[:] = data.mocap_quat + GRIPPER_ROTATION

    def _observe(self, env: gym.Env, ids: _FetchHandles) -> tuple[np.ndarray, np.ndarray]:
        """``MujocoFetchEnv._get_obs``: the flat observation and the achieved goal."""
        model, data, dt = env.model, env.data, ids.dt
        grip_pos = data.site_xpos[ids.grip]
        mujoco.mj_jacSite(model, data, self._jacp, None, ids.grip)
        grip_velp = self._jacp @ data.qvel * dt
        gripper_state = data.qpos[ids.finger_qpos]
        gripper_vel = data.qvel[ids.finger_qvel] * dt
        if ids.object < 0:
            obs = np.concatenate([grip_pos, gripper_state, grip_velp, gripper_vel])
            return obs, grip_pos.copy()
        object_pos = data.site_xpos[ids.object]
        object_rot = rotations.mat2euler(data.site_xmat[ids.object].reshape(3, 3))
        mujoco.mj_jacSite(model, data, self._jacp, self._jacr, ids.object)
        object_velp = self._jacp @ data.qvel * dt - grip_velp
        object_velr = self._jacr @ data.qvel * dt
        obs = np.concatenate([grip_pos, object_pos, object_pos - grip_pos, gripper_state,
                              object_rot, object_velp, object_velr, grip_velp, gripper_vel])
        return obs, object_pos.copy()

    def close(self) -> None:
        for env in self.wrapped:
            env.close()
