mod issue;
