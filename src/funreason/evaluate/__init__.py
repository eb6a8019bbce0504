"""Evaluation: BFCL scoring and runs, held-out exact calls, the HumanEval forgetting check, reports.

The BFCL category lists every caller uses live here, once.
"""

# the leaderboard's aggregates: simple (the mean of its three languages), the other Non-Live AST
# categories, and Live AST (weighted by entry counts)
NON_LIVE_SIMPLE = ("simple_python", "simple_java", "simple_javascript")
NON_LIVE_OTHER = ("multiple", "parallel", "parallel_multiple")
LIVE_AST = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
# BFCL's Non-Live AST for Python: the paper's single-turn categories (Table 2)
NON_LIVE_PYTHON = ("simple_python", "multiple", "parallel", "parallel_multiple")
# after each self-refinement round: the Python call categories a small model can reach, and the no-call check
ROUND_CATEGORIES = ("simple_python", "multiple", "parallel", "irrelevance")
# the demo's quick subset (a few entries each fit its 15 minutes)
DEMO_CATEGORIES = ("simple_python", "multiple", "irrelevance")
# BFCL's multi-turn categories (200 entries each), scored against its executable environments
MULTI_TURN = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")
