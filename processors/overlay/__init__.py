"""The overlay lease processor: a subnet of every overlay network and a VTEP per agent."""
