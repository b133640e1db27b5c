print("smime-milter")
