"""CNN Activation Explorer: a Dash dashboard that shows what every layer of a Keras image classifier sees."""
