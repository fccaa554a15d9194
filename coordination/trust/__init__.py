"""What a record must prove before a decision reads it: sealed evidence
(``evidence``), signed specs and landing manifests (``signing``), approvers' SSH
signatures (``sshsig``) and which of a gate's votes count (``approvers``); the
secrets no todo is given (``secrets``) and the keys derived for a todo's run
(``runkeys``).

Above the catalog and the planner, below the runtime, and it imports nothing of the
runtime: a record is handed in (read by whoever holds the store) and judged here.
"""
