"""What-if experiments: run one workload under several orchestration strategies, as ordinary Reynolds
tasks, and compare them with statistics.

    scenario   the YAML a user writes: workload, strategies, repetitions, hypothesis (validated, bounded)
    strategies what each strategy changes (hybrid lanes, pool routing, replica counts); plan-shape hashing
    measure    one run's measures, read from Reynolds' own records in Postgres
    stats      summaries, pairwise tests and the hypothesis verdict (scipy)
    report     Markdown and the PNG chart (matplotlib, Agg)
    runner     the durable loop that runs experiments, resumes them after a crash, learns winners
    tools      the MCP tools (run/get/list/cancel_experiment)
"""
