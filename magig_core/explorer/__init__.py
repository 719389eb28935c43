"""The explorer behind the web app: run several methods on one image, estimate, render, export, cache.

``Explorer`` (in ``service``) is the entry point; ``app.py`` only maps widgets onto it.
"""
