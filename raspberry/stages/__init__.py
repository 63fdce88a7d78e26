"""What a build is made of: one package per stage (its spec in `stage.py`, the work on its rows
beside it, its config section in `config.py`), registered in order in `registry.py`; `spec.py`
is what a stage is, `config.py` the build's config that composes the stages' sections, and
`estimate.py` what a stage's estimate hook works from."""
