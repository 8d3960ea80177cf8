"""Diffusion and flow samplers: noise schedules, paths, parameterisations, losses, and samplers as
diffrax solvers."""

__all__: list[str] = []
