"""Rendering: one customer + their offers + their signed link become a template context (context.py), then
each channel's renderer turns a treatment's templates into that customer's outputs."""
