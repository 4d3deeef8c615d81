"""Labelled capture scenarios (benign traffic and each alert kind) built on icmpscope.synth."""

__all__: list[str] = []
