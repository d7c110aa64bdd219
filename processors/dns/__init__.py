"""The DNS processor: Mesos tasks, agents, frameworks and the cluster -> DNS record sets."""
