"""
gearmand's log levels, most severe first: what C{--verbose} takes and the
C{verbose} admin command prints.  A module of its own so that the twistd
plugin's options can name them without importing the server.
"""

LOG_LEVELS = ("FATAL", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")
