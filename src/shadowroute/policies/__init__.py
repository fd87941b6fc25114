"""Policies between all-or-nothing: cascades and per-request rules, proven on the stored pairs.

A task type can move whole (PROMOTE), or part of it can: a *cascade* answers with the candidate
and escalates to the primary when a runtime check fails (:mod:`.cascade`), a *partial* route
sends the requests a learned rule picks to the candidate and the rest to the primary
(:mod:`.partial`). Both are decided from pairs already stored, with no new model call, by the
same always-valid tests as a promotion; the report shows what each policy would save and
``shadowroute promote --cascade`` / ``--partial`` applies one.
"""
