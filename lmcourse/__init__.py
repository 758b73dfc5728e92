"""lmcourse: the code behind *Large Language Models: From Theory to Practice*.

Every chapter of the book imports its reusable pieces from here, one module per idea.
"""

__version__ = "0.1.0"
