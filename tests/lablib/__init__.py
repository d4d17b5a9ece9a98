"""The lab's test library, shared by the integration tests and the benchmarks.

shell        paths, commands (sh, virsh), the lab commands' environments, one wait_until
ansible      one module runner, one playbook runner, one recap parser
forge        one client of the lab forge: admin view, repositories, workflows, runs and their logs
runner       a lab runner run as a process of the test
interrupt    a run killed at a chosen task
fence_probe  the workflow that tries to leave a job's fence, and what it found
spoof_probe  a guest that tries to spoof the LAN
"""
