"""Pure physics shared by the simulated IOCs, the devices, the plans and the tests.

Nothing here does I/O or keeps state: functions of numbers and arrays only, so the same
formula drives the simulator and checks the measurement.
"""
