"""Parallel runs (GitHub Scientist / Diffy): the same request to the live release twice and to the candidate,
their answers compared, differences between two live answers learnt as noise.

    compare.py     pure: one request's three answers → the candidate's unexplained differences; the report
    comparator.py  the side effects: an HTTP listener that takes copies of live requests and sends them on
"""
