"""Student notebooks and grading, as nbgrader shapes them: one small step per job, composed in
a list.

    markup      the exercise markup: cells, markers, grade_ids, the source's own checks
    steps       the steps (ClearSolutions, ClearHiddenTests, LockCells, ClearOutput,
                OverwriteCells, AddEndLines, …) and the two pipelines built of them:
                STUDENT (answer notebook -> student notebook) and ASSEMBLE (answer notebook +
                submission -> the notebook that grading runs)
    execute     the Execute step: runs an assembled notebook, each test cell checked for its end line,
                on tools/nbrun.py's executor (the one the notebook runner uses)
    score       points and feedback from an executed notebook (Score, Feedback)
    workers     the workers' evcxr build folders (prewarmed copies) and the kernels' environment
    classroom   a folder of submissions: each one through the GRADE pipeline, in parallel,
                saved as it comes (tools/gradebook.py)

tools/nbgrade.py is the command line on top.
"""
