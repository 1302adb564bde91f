"""Everything with side effects: model providers, tools, transforms and the mirror writer."""
