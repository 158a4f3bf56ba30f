"""Crash safety: a run publishes all or nothing, and the state store is never corrupted.

Real `retainer run` processes are killed with SIGKILL at many points — before they open
anything, while they compute, while they write exports and publish, and after they publish,
at moments picked by time and by watching their files, and at exact steps by a hook that
kills the process from inside — and after every kill the outputs, the exports and the state
store are checked: the outputs are exactly the previous good result or exactly the new one
(every table from the same one, never a mix), the exports are the published result, the store
opens and its history is coherent, and a normal run afterwards succeeds and lists the killed
runs as interrupted. Two runs at once must refuse cleanly, and a run that fails mid-way must
leave a 'failed' run and the previous outputs.

Two windows are known. The store commits before the outputs (by design: the next run
records again), so a kill between the two leaves history one run ahead of the outputs; that
is accepted and repaired by the next run. The exports are renamed into place after the
outputs commit, so a kill between the two leaves the previous run's exports beside the new
tables until whoever opens the project next completes the rename (pinned by the exact-step
kills in test_kills_at_exact_steps); only the timed kills tolerate that window, exactly.

The expected results come from a reference copy of the same demo project, run without
interference: at OLD_AS_OF ("old"), at OLD_AS_OF again ("old-again"), at NEW_AS_OF ("new"),
then at NEW_AS_OF again ("again"). A run at the latest as_of replaces that run, and its state
machine reads the replaced run's stages as the previous ones, so a re-run's `account_reasons`
differs in `__prev__`/`__since__` (nothing else does).
"""
