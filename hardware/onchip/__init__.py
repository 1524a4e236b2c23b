"""On-chip learning: BrainProp on Loihi's learning engine, as Lava simulates it.

``plan``: how a rate net's trial maps onto LearningDense synapses and neuron traces;
``arithmetic``: the learning engine's fixed-point arithmetic (one statement of it);
``selection``: max-Boltzmann action selection shared by chip and model;
``model``: the numpy model of a learning run (float, and fixed point bit for bit).
The Lava processes are in ``hardware.lava.processes.learning``, the graph in
``hardware.lava.learning``. Numpy only: no torch, no Lava imports here.
"""
