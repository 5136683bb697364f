"""Training: configs (``config``), the train state (``state``), AdamW and its schedule (``optim``),
the generic loop (``loop``) and the classification task (``classification``)."""
