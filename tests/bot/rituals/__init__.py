"""Tests of the rituals: meetings, reminders, readiness, agendas, decisions."""
