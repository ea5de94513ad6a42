"""
Examples of sudp applications; see the docstring of each module.
"""
