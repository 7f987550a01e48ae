"""Teaching rspamd from the customers' Junk folders (issue 18): the learner service and
its client of rspamd's controller; ``store/spam_learning.py`` holds the queue."""
