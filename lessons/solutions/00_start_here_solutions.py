# Solutions to lesson 00 (start here). Load into a cell with
#   %load solutions/00_start_here_solutions.py
# after running the lesson: it uses the lesson's `traj`, `split`, `schedule`, `influence`, `exact_all`, `estimate_all`
# and `p`, and defines only new names (sol_...), so the lesson's own variables stay as they were.
import dve_teach as dt
from dve_teach import plots
from dve_teach.teach.exercises import lesson00 as sol_ex

# Exercise A: the exact replay's most helpful point (the largest exact TSLOO), ranked by the DVE.
sol_most_helpful = int(exact_all.argmax())                                   # noqa: F821
sol_dve_rank = 1 + int((estimate_all > estimate_all[sol_most_helpful]).sum())  # noqa: F821
print(sol_ex.check_dve_rank(sol_dve_rank, exact_all, estimate_all))          # noqa: F821

# Exercise B: point p removed only at its last occurrence.
sol_last_step = schedule.occurrences(p)[-1]                                  # noqa: F821
sol_last_only = dt.exact_loo(traj, split.test, [p], [sol_last_step]).mean()  # noqa: F821
sol_everywhere = dt.exact_loo(traj, split.test, [p]).mean()                  # noqa: F821
print(sol_ex.check_last_occurrence(sol_last_only, traj, split.test, p))      # noqa: F821
print(f"the last step alone: {float(sol_last_only):+.5f}; every occurrence: {float(sol_everywhere):+.5f}")
# The share carried by the last step differs from point to point and run to run: compare a few
# points with the widget's middle panel (removed at one step only).

# Exercise 1: where the most helpful and the most harmful points sit (the most helpful: the largest
# exact TSLOO, as in exercise A).
print(sol_ex.check_most_helpful(sol_most_helpful, traj, split.test))         # noqa: F821
with plots.style():
    sol_fig, sol_ax = plots.new_figure(1, figsize=(4.5, 3.3))
    plots.decision_boundary(sol_ax[0, 0], traj, highlight=[sol_most_helpful, int(exact_all.argmin())],  # noqa: F821
                            title="most helpful and most harmful, circled")
sol_fig  # noqa: B018
