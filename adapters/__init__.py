"""Delivery adapters: send the actions a playbook decides on (email, tasks, webhooks, chat).

Each adapter implements the same small interface, so the engine never talks to SMTP servers,
task trackers or HTTP endpoints itself. This directory ships inside the wheel as
``playbook_engine.adapters``; in a checkout ``playbook_engine/adapters`` is a symlink to it, so
always import it by that name, never as a top-level ``adapters`` package.
"""
