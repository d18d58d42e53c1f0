"""What the agent and the observers share: the spec, wire messages, env families, the
policy's networks and encoder, and the RPC group. Imports nothing of agent/ or observer/."""
