"""Policy optimisation: the hierarchical reward as a TRL reward function, GRPO and DPO builders, hacking monitors."""
