"""SES: users become contacts of the account's contact list, subscribed to a topic (an e-mail list)."""
