"""The support desk's tools: reading a bounce a customer forwards (``bounce_parse``,
``bounce_text``), explaining it from our own records (``explainer``, ``advice``), and
suggesting the address that was meant (``did_you_mean``)."""
