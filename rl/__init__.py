"""A2C (and DQN) agents on Atari with a CoordConv features extractor for stable-baselines3 (paper section 6).

Nothing is here yet: this package will hold the `BaseFeaturesExtractor` and the training runs.
"""
