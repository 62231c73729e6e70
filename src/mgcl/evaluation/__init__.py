"""The few-shot protocols on cached features, their summaries and reports."""
