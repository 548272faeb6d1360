"""Alerts: conditions that hold now and the channels that tell a person about them."""
